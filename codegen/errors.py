"""The generator's single error type: every failure says where and what to do."""


class CodegenError(Exception):
    """The schema or the generator's inputs cannot produce a correct API."""
