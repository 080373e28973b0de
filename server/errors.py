"""Domain exceptions that cross from the pipeline to the API boundary."""


class ForgeError(Exception):
    """A problem the user can act on; its message is shown to them verbatim."""


class InputError(ForgeError, ValueError):
    """An argument failed validation: the message names it, its value and what was expected."""

    def __init__(self, argument: str, value, expected: str):
        shown = repr(value)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        super().__init__(f"{argument}={shown}: expected {expected}")
        self.argument = argument
        self.value = value
        self.expected = expected


class RefusedInput(ForgeError):
    """The input proved unusable while it was processed (a picture with no object in it): nothing is kept."""


class Cancelled(ForgeError):
    """The job was cancelled by the user; partial outputs are discarded."""
