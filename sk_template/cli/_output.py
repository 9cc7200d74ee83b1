r"""Result lines that always parse: ``predict``'s formats.

Every image gives exactly one record, whatever its name:

``tsv`` (the default)
    ``path<TAB>label<TAB>probability``, one line.  In the path and the label
    a backslash is written ``\\``, a tab ``\t``, a newline ``\n``, a carriage
    return ``\r``, and every other control or line-separating character, every
    byte that is not UTF-8 and every character the output's encoding cannot
    write as ``\xNN``, one per byte of the name, as in a Python bytes literal
    (``codecs.escape_decode(field.encode())[0]`` gives the name's bytes back).
``jsonl``
    One JSON object per line, ``{"path": ..., "label": ..., "probability":
    ...}``, written by :mod:`json` in ASCII.  A byte of a name that is not
    UTF-8 is the lone surrogate ``\udcNN`` (Python's ``surrogateescape``:
    ``os.fsencode(record["path"])`` gives the name's bytes back).
``csv``
    A header ``path,label,probability`` and one record per image, written by
    :mod:`csv` as RFC 4180 says (CRLF line ends; fields quoted where needed,
    so a quoted record may span lines), in UTF-8; a name that is not UTF-8 is
    written as its own bytes (read the file with ``errors="surrogateescape"``
    to get them back).
"""

# SPDX-License-Identifier: BSD-3-Clause

import csv
import io
import json
import sys
import unicodedata

from ._common import label_json

FORMATS = ("tsv", "jsonl", "csv")
_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
# Controls, lone surrogates (bytes that are not UTF-8), line and paragraph
# separators: never written as themselves.
_UNSAFE = ("Cc", "Cs", "Zl", "Zp")


def _plain(char, encoding):
    """Whether ``char`` may be written as itself in a line of text."""
    if unicodedata.category(char) in _UNSAFE:
        return False
    if char.isascii():
        return True
    try:
        char.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def escape_field(text, encoding="utf-8"):
    r"""``text`` (a path or a label) as one field of one line of text.

    See the module docstring for the escapes.

    Examples
    --------
    >>> print(escape_field("a\tb\nc\\d.png"))
    a\tb\nc\\d.png
    >>> import os
    >>> name = os.fsdecode(b"caf\xe9-\xc3\xa9") + "\u2028.png"  # not UTF-8
    >>> print(escape_field(name))
    caf\xe9-é\xe2\x80\xa8.png
    """
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif _plain(char, encoding):
            out.append(char)
        else:
            out.extend(f"\\x{b:02x}" for b in char.encode("utf-8", "surrogateescape"))
    return "".join(out)


class ResultWriter:
    """Writes ``(path, label, probability)`` records to stdout in a format."""

    def __init__(self, fmt, console):
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}; got {fmt!r}.")
        self.fmt, self.console = fmt, console
        self.encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
        if fmt == "csv":
            self._text = io.StringIO()
            # CRLF line ends (RFC 4180): the writer then quotes a field
            # holding a CR or an LF, which a reader keeps inside the field.
            self._csv = csv.writer(self._text, lineterminator="\r\n")
            self._csv_row("path", "label", "probability")

    def _csv_row(self, *fields):
        self._csv.writerow(fields)
        data = self._text.getvalue().encode("utf-8", "surrogateescape")
        self._text.seek(0)
        self._text.truncate()
        raw = getattr(sys.stdout, "buffer", None)
        if raw is None:  # a text-only stream: write text it can take
            sys.stdout.write(data.decode(self.encoding, "backslashreplace"))
            sys.stdout.flush()
        else:
            sys.stdout.flush()
            raw.write(data)
            raw.flush()

    def write(self, path, label, probability):
        if self.fmt == "tsv":
            path, text = (escape_field(t, self.encoding) for t in (path, str(label)))
            self.console.out(f"{path}\t{text}\t{probability:.4f}")
        elif self.fmt == "jsonl":
            record = {
                "path": path,
                "label": label_json(label),
                "probability": float(probability),
            }
            self.console.out(json.dumps(record))
        else:
            self._csv_row(path, str(label), f"{probability:.4f}")
