"""Assertions for checks: each failure says what was expected and what the server did.

The request/response evidence itself is attached to the report by the plugin; these messages say
which rule broke, in one line a person can act on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import requests
from pydicom.dataset import Dataset

from . import multipart
from .client import Client
from .dicomweb import (
    ACCEPT_DICOM_ANY_TS,
    DICOM,
    DICOM_JSON,
    ProtocolError,
    instance_path,
    iter_parts,
    read_dicom,
)
from .samples import Instance
from .verdicts import PreconditionFailed, chose, info, not_implemented

__all__ = ["ROUTE_ABSENT", "PreconditionFailed", "chose", "info", "not_implemented"]

# Answers PS3.18 and HTTP sanction for "this server does not have that resource or method".
ROUTE_ABSENT = (404, 405, 501)


def _request_line(response: requests.Response) -> str:
    return f"{response.request.method} {response.request.path_url}"


def status(response: requests.Response, *expected: int, why: str = "") -> None:
    """The answer has one of the expected status codes; ``why`` says which rule asks for them."""
    if response.status_code not in expected:
        wanted = " or ".join(str(code) for code in expected)
        raise AssertionError(
            f"{_request_line(response)}: expected HTTP {wanted}, got "
            f"{response.status_code} {response.reason}" + (f" ({why})" if why else "")
        )


def get_metadata(client: Client, path: str) -> requests.Response:
    """GET a metadata resource as DICOM JSON: 200, or NOT-IMPLEMENTED on a server without
    metadata resources."""
    response = client.get(f"{path}/metadata", headers={"Accept": DICOM_JSON})
    if response.status_code in ROUTE_ABSENT:
        not_implemented(
            f"no metadata resource: GET {path}/metadata answered {response.status_code}"
        )
    status(response, 200)
    return response


def chose_406(response: requests.Response) -> bool:
    """Whether the answer is 406 (Not Acceptable), 8.7.8.1's reading of a negotiation nothing
    acceptable is left to: then it is recorded as the reading "406", its body let go, and the
    check has nothing more to judge."""
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
    precondition(
        response.status_code in expected,
        f"{_request_line(response)} answered {response.status_code} {response.reason}, so the "
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
        response = client.get(
            instance_path(instance),
            headers={"Accept": ACCEPT_DICOM_ANY_TS},
            stream=True,
        )
        status(response, 200)
        same_instances(iter_dicom_parts(client, response), [instance])
