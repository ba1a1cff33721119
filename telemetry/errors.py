"""The tool's own error type: one line naming file, line and column."""

from __future__ import annotations


class TelemetryError(Exception):
    """Bad input that the user can fix.

    The message is a single line ``FILE:LINE:COLUMN: what is wrong`` (line and
    column are omitted when unknown). The command line prints it and exits
    with status 2; it never shows a traceback.

    Parameters
    ----------
    message : str
        What is wrong, in words a field biologist understands.
    path : str, optional
        The file (or ``archive.zip::member``) the problem is in.
    line : int, optional
        1-based line number in the (decompressed) file.
    column : str, optional
        Column name as written in the file.
    """

    def __init__(
        self,
        message: str,
        path: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.message = " ".join(str(message).split())
        self.path = path
        self.line = line
        self.column = column
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.path:
            where.append(str(self.path))
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class ParseError(TelemetryError):
    """A file could not be read as telemetry (unknown layout, missing column, bad dates)."""


class NotTelemetry(ParseError):
    """The content is no telemetry at all (empty, binary, a layout no reader knows), as against a
    file in a known format that failed to parse: reading a folder skips it without a word more."""


class ConfigError(TelemetryError):
    """An option or configuration value is invalid."""
