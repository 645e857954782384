"""Files on Matrix: an attachment is uploaded to the media repository, then sent as an ``m.file`` event.

Matrix has no message with a file inside: the bytes go to ``POST /_matrix/media/v3/upload``, which answers
with an ``mxc://`` URL, and an ``m.file`` message points at it, with the name, type and size clients show
before anyone downloads it. The upload is one raw request, retried like every other (``matrix_http.call``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from bot.adapters.matrix_client import MatrixClient
from bot.adapters.matrix_http import RawResult, call
from bot.adapters.matrix_render import thread_relation
from bot.model import Attachment

UPLOAD_PATH = "/_matrix/media/v3/upload"


class MatrixUploadError(Exception):
    """The homeserver refused a file (too large, media repository off, no permission)."""


async def upload(client: MatrixClient, attachment: Attachment) -> str:
    """Put the attachment's bytes in the media repository; returns its ``mxc://`` URL."""
    answer = await call(lambda: _post_bytes(client, attachment), what="upload")
    uri = answer.body.get("content_uri")
    if not answer.ok or not isinstance(uri, str):
        raise MatrixUploadError(f"could not upload {attachment.filename!r}: {answer.status} {answer.body}")
    return uri


def file_content(
    attachment: Attachment, mxc: str, *, reply_to: str | None = None, thread: str | None = None
) -> dict[str, Any]:
    """The ``m.file`` message for an uploaded attachment, in ``thread`` if given; it mentions nobody."""
    content: dict[str, Any] = {
        "msgtype": "m.file",
        "body": attachment.filename,
        "filename": attachment.filename,
        "url": mxc,
        "info": {"mimetype": attachment.mime, "size": len(attachment.data)},
        "m.mentions": {},
    }
    if thread:
        content["m.relates_to"] = thread_relation(thread, reply_to)
    elif reply_to:
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
    return content


async def _post_bytes(client: MatrixClient, attachment: Attachment) -> RawResult:
    """One upload request: the body is the file itself, typed by its MIME type (not JSON)."""
    api_path = f"{UPLOAD_PATH}?filename={quote(attachment.filename, safe='')}"
    return await client.request("POST", api_path, data=attachment.data, content_type=attachment.mime)
