"""Query parameters: loaded and checked before a view runs, so views receive clean values."""

import re

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load

from errors import InvalidParameter

MAX_PAGE = 2_147_483_647
_DIGITS = re.compile(r"[0-9]+")
# Longer digit strings are past every bound; they are clamped or refused without int().
_MAX_DIGITS = 12


class CountingNumber(fields.Field):
    """A positive base-10 integer written in ASCII digits; leading zeros are fine.

    `clamp` lowers larger values to the bound (limits and page sizes); `maximum`
    refuses them (page numbers).
    """

    def __init__(self, *, clamp=None, maximum=None, **kwargs):
        # What the OpenAPI document says of it (openapi.py reads field metadata).
        rule = (f"Values above {clamp} are treated as {clamp}." if clamp
                else f"At most {maximum}." if maximum else "")
        documented = {"minimum": 1, "description": "A whole number written with the digits "
                      f"0-9 (leading zeros are fine; empty means absent). {rule}".strip()}
        if maximum is not None:
            documented["maximum"] = maximum
        super().__init__(metadata={**documented, **kwargs.pop("metadata", {})}, **kwargs)
        self.clamp = clamp
        self.maximum = maximum

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not _DIGITS.fullmatch(value):
            raise ValidationError("must be a whole number written with the digits 0-9")
        digits = value.lstrip("0") or "0"
        number = int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS
        if number < 1:
            raise ValidationError("must be at least 1")
        if self.maximum is not None and number > self.maximum:
            raise ValidationError(f"must be at most {self.maximum}")
        return min(number, self.clamp) if self.clamp is not None else number


class QueryParams(Schema):
    """Base for query strings: other parameters are ignored, empty ones count as absent,
    and a parameter given twice is refused rather than silently picking one."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def single_values(self, args, **kwargs):
        """Query arguments (a MultiDict) as one value per declared parameter."""
        values = {}
        for field in self.fields.values():
            name = field.data_key or field.name
            given = [value for value in args.getlist(name) if value != ""]
            if len(given) > 1:
                raise ValidationError("must be given at most once", name)
            if given:
                values[name] = given[0]
        return values


class LimitParams(QueryParams):
    """?limit for the recent lists."""

    limit = CountingNumber(clamp=50, load_default=10)


class PageParams(QueryParams):
    """?page&pageSize for the paginated lists."""

    page = CountingNumber(maximum=MAX_PAGE, load_default=1)
    # sql/sessions.sql and sql/uploads.sql rely on this bound: a page is at most 100 rows.
    page_size = CountingNumber(clamp=100, load_default=20, data_key="pageSize")


def load_params(schema, args):
    """Load query arguments with a schema; raise InvalidParameter naming the parameter and rule."""
    try:
        return schema.load(args)
    except ValidationError as exc:
        name, problems = next(iter(exc.normalized_messages().items()))
        problem = problems[0] if isinstance(problems, list) else problems
        raise InvalidParameter(f"Invalid parameter '{name}': {problem}.") from None
