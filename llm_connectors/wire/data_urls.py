"""``data:`` URLs (RFC 2397): taking apart the inline images that ``image_url`` parts carry.

Only the reading is shared here. Which media types and encodings a provider accepts, and the
words it refuses the others with, stay with that provider's translator.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

__all__ = ["DataURL", "parse_data_url"]

_SCHEME = "data:"


@dataclass(frozen=True)
class DataURL:
    """The parts of ``data:[<media type>][;<parameter>]...,<data>``, each as written.

    Attributes:
        media_type: What stands before the first ``;``: maybe empty, in any case, padded.
        parameters: The ``;``-separated parameters after it (``base64`` among them for base64 data).
        data: Everything after the first comma; empty when the URL has no comma.
    """

    media_type: str
    parameters: tuple[str, ...]
    data: str

    @property
    def is_base64(self) -> bool:
        """Whether the data is declared base64 (``;base64``) rather than percent-encoded bytes."""
        return any(parameter.strip().lower() == "base64" for parameter in self.parameters)

    def base64_data(self) -> str:
        """The data as bare base64: base64 data without its whitespace, other data encoded.

        Raises:
            ValueError: Data declared base64 does not decode (``binascii.Error`` is one).
        """
        if not self.is_base64:
            return base64.b64encode(unquote_to_bytes(self.data)).decode("ascii")
        data = "".join(self.data.split())  # pasted base64 often carries line breaks
        base64.b64decode(data, validate=True)
        return data


def parse_data_url(url: str) -> DataURL | None:
    """Split a ``data:`` URL into its parts; ``None`` for any other URL (``https://...``).

    Nothing is refused here: an empty media type, empty data or a missing ``base64`` flag is
    for the caller to judge, as providers differ on what they take.
    """
    if not url.startswith(_SCHEME):
        return None
    header, _, data = url[len(_SCHEME):].partition(",")
    media_type, *parameters = header.split(";")
    return DataURL(media_type, tuple(parameters), data)
