"""Assertions for checks: each failure says what was expected and what the server did.

The request/response evidence itself is attached to the report by the plugin; these messages say
which rule broke, in one line a person can act on.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

import requests
from pydicom.dataset import Dataset

from . import multipart, readmap
from .client import Client
from .dicomweb import (
    ACCEPT_DICOM_ANY_TS,
    DICOM,
    ProtocolError,
    instance_path,
    iter_parts,
    json_array,
    json_body,
    metadata,
    read_dicom,
    retrieve,
    search_results,
    uids,
)
from .samples import Instance
from .verdicts import PreconditionFailed, chose, info, not_implemented

__all__ = ["ROUTE_ABSENT", "PreconditionFailed", "chose", "info", "not_implemented"]

# Answers PS3.18 and HTTP sanction for "this server does not have that resource or method".
ROUTE_ABSENT = (404, 405, 501)


def request_line(response: requests.Response) -> str:
    """``GET /path?query`` of the request a response answers: how messages name a request."""
    return f"{response.request.method} {response.request.path_url}"


def status(response: requests.Response, *expected: int, why: str = "") -> None:
    """The answer has one of the expected status codes; ``why`` says which rule asks for them."""
    if readmap.on:
        readmap.status(response, expected)
    if response.status_code not in expected:
        wanted = " or ".join(str(code) for code in expected)
        raise AssertionError(
            f"{request_line(response)}: expected HTTP {wanted}, got "
            f"{response.status_code} {response.reason}" + (f" ({why})" if why else "")
        )


def results(
    response: requests.Response, *, none_on: Collection[int] = (204,)
) -> list[dict[str, Any]]:
    """The results of a search: a DICOM JSON array on 200, none on 204 (8.3.4.4.1) or on
    another status in ``none_on`` the check takes for "no results" (a 404, say, where which
    status an empty answer has is another check's business)."""
    status(response, 200, *none_on, why="a search answers 200 with its results or 204 with none")
    return search_results(response, none_on=none_on)


def unique_keys(response: requests.Response, tag: str) -> list[str]:
    """The unique keys (``tag``) of a search's results, in order; each match must be one
    result, with its unique key (10.6.3.3)."""
    found: list[Any] = uids(results(response), tag)
    assert None not in found, f"{request_line(response)}: a result lacks its unique key {tag}"
    repeated = sorted({u for u in found if found.count(u) > 1})
    assert not repeated, (
        f"{request_line(response)}: the results list {repeated} more than once; each matching "
        "entity is one result, identified by its unique key (10.6.3.3)"
    )
    return [str(u) for u in found]


def get_metadata(
    client: Client, path: str, *, transcoded: bool = False, needed: bool = False
) -> requests.Response:
    """GET a metadata resource as DICOM JSON (UTF-8, 8.8.5): 200, or NOT-IMPLEMENTED on a
    server without metadata resources. ``transcoded``: the resource holds text stored in a
    character set other than UTF-8, so a 406 is 8.8.5's answer of a server that cannot
    transcode it ("Otherwise, the origin server shall return 406"): nothing to judge (INFO).
    ``needed``: the check needs it before its rule, so another answer than 200 leaves the check
    unjudged (``answered``) instead of failing it."""
    response = metadata(client, path)
    if readmap.on:
        readmap.status(response, ROUTE_ABSENT + ((406,) if transcoded else ()))
    if response.status_code in ROUTE_ABSENT:
        not_implemented(
            f"no metadata resource: GET {path}/metadata answered {response.status_code}"
        )
    if transcoded and response.status_code == 406:
        info(
            f"GET {path}/metadata answered 406: text stored in another character set than "
            "UTF-8, which a server that cannot transcode it refuses (PS3.18 8.8.5)"
        )
    if needed:
        answered(response, 200)
    else:
        status(response, 200)
    return response


def metadata_objects(client: Client, path: str) -> list[dict[str, Any]]:
    """The DICOM JSON objects of a metadata resource (get_metadata's verdicts first); a body
    that is not a JSON array of objects is a protocol error."""
    return json_array(get_metadata(client, path))


def instance_metadata(
    client: Client, instance: Instance
) -> tuple[requests.Response, dict[str, Any]]:
    """The one DICOM JSON object of an instance's metadata, with the response that held it."""
    response = get_metadata(client, instance_path(instance))
    objects = json_body(response)
    if not isinstance(objects, list) or len(objects) != 1 or not isinstance(objects[0], dict):
        raise AssertionError(f"{request_line(response)}: not one DICOM JSON object")
    return response, objects[0]


def chose_406(response: requests.Response) -> bool:
    """Whether the answer is 406 (Not Acceptable), 8.7.8.1's reading of a negotiation nothing
    acceptable is left to: then it is recorded as the reading "406", its body let go, and the
    check has nothing more to judge."""
    if readmap.on:
        readmap.status(response, (406,))
    if response.status_code != 406:
        return False
    response.close()
    chose("406")
    return True


def precondition(holds: bool, what: str) -> None:
    """What the check needs before it can test its rule holds; else the check is ERROR (it
    cannot judge the rule), never FAIL. ``what`` says what did not hold."""
    if not holds:
        raise PreconditionFailed(what)


def answered(response: requests.Response, *expected: int) -> None:
    """A step the check needs before its rule (storing the study first, say) was answered with
    one of the expected status codes: a ``precondition`` on a response."""
    if readmap.on:
        readmap.status(response, expected, readmap.PRECONDITION)
    precondition(
        response.status_code in expected,
        f"{request_line(response)} answered {response.status_code} {response.reason}, so the "
        "rule under test could not be reached",
    )


def _hex(data: bytes, start: int) -> str:
    return data[start : start + 16].hex(" ") or "(end)"


def same_bytes(got: bytes, want: bytes, what: str, *, padded: bool = False) -> None:
    """``got`` is ``want`` (plus one pad byte when ``padded``: DICOM pads values to even length).

    Payloads are never compared inside an ``assert``: pytest would explain a mismatch with a diff
    whose cost grows with the square of their size, and on CI (the ``CI`` variable set) it does
    not truncate it, so a corrupted megabyte of pixel data would stall the run for hours.
    """
    size_ok = len(got) == len(want) or (padded and len(got) == len(want) + 1)
    if size_ok and got[: len(want)] == want:
        return
    at = next(
        (i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
        min(len(got), len(want)),
    )
    raise AssertionError(
        f"{what}: {len(got)} bytes, expected {len(want)}; they differ from offset {at}: "
        f"got {_hex(got, at)}, expected {_hex(want, at)}"
    )


def retrieved(
    client: Client, path: str, accept: str = ACCEPT_DICOM_ANY_TS, *, why: str = ""
) -> Iterator[Dataset]:
    """A WADO-RS retrieve that answers 200 (``why`` as for ``status``), and its parts, each
    parsed as it arrives (iter_dicom_parts): the request is sent and its status judged now,
    the parts read as they are asked for (``list()`` them to hold them all)."""
    response = retrieve(client, path, accept)
    status(response, 200, why=why)
    return iter_dicom_parts(client, response)


def dicom_parts(client: Client, response: requests.Response) -> list[Dataset]:
    """The parts of a WADO multipart response, each an application/dicom file, parsed."""
    return list(iter_dicom_parts(client, response))


def iter_dicom_parts(client: Client, response: requests.Response) -> Iterator[Dataset]:
    """The parts of a WADO multipart response, each parsed as it arrives: a check that looks
    at each part once holds one part at a time, whatever the size of the study."""
    root = multipart.parse_media_type(response.headers.get("Content-Type", ""))[1].get("type")
    for number, part in enumerate(iter_parts(client, response), 1):
        part_type = part.content_type or root or ""
        if multipart.parse_media_type(part_type)[0] != DICOM:
            raise ProtocolError(f"part {number} has Content-Type {part_type!r}, not {DICOM}")
        yield read_dicom(part.body, f"part {number}")


def differences(got: Dataset, stored: Dataset) -> list[str]:
    """Tags whose values differ between a retrieved dataset and the stored one (group 0002, the
    file meta information, may be rewritten by a server and is not compared)."""
    tags = {e.tag for e in got if e.tag.group != 2} | {e.tag for e in stored if e.tag.group != 2}
    diff = []
    for tag in sorted(tags):
        a, b = got.get(tag), stored.get(tag)
        if a is None or b is None or a.VR != b.VR or a.value != b.value:
            diff.append((a or b).keyword or str(tag))
    return diff


def same_instances(
    got: Iterable[Dataset], stored: Iterable[Instance] | Mapping[str, Instance]
) -> None:
    """The retrieved datasets are exactly the stored instances, element for element. Each is
    compared as it comes and let go (pass iter_dicom_parts for a study of any size); ``stored``
    may be a mapping by SOP Instance UID that makes each instance when asked."""
    by_uid = stored if isinstance(stored, Mapping) else {i.sop_uid: i for i in stored}
    got_uids = []
    for ds in got:
        uid = str(ds.get("SOPInstanceUID", "<no SOPInstanceUID>"))
        got_uids.append(uid)
        assert uid in by_uid and got_uids.count(uid) == 1, (
            f"expected instances {sorted(by_uid)}, got {got_uids}"
        )
        diff = differences(ds, by_uid[uid].dataset)
        assert not diff, f"instance {uid} differs from what was stored in: {diff}"
    assert sorted(got_uids) == sorted(by_uid), (
        f"expected instances {sorted(by_uid)}, got {got_uids}"
    )


def stored_and_retrievable(client: Client, instances: Iterable[Instance]) -> None:
    """Read back: each instance can be retrieved and equals what was sent."""
    for instance in instances:
        same_instances(retrieved(client, instance_path(instance)), [instance])
