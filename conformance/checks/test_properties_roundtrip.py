"""Round-trip properties: generated instances (names with their component groups in several
character sets, dates, times, numbers of every VR, multi-valued and private attributes) are
stored and read back: their metadata must equal them under Annex F (conformance/annexf.py), the
instance retrieved must equal them element by element, and a retrieve in a transfer syntax asked
for carries the stored pixels. The strategies and helpers are test_properties.py's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pytest
from hypothesis import strategies as st
from pydicom import Dataset

from conformance import expect, multipart, synthetic
from conformance.annexf import json_differences
from conformance.checks.test_properties import (
    SPECIFIC_CHARACTER_SET,
)
from conformance.client import Client
from conformance.dicomweb import (
    DICOM,
    ProtocolError,
    dicom_accept,
    instance_path,
    parts,
    read_dicom,
    referenced_sop_uids,
    retrieve,
    stow,
)
from conformance.explore import explore
from conformance.run.fixtures import EmptyStudy

# --- round trips: what is stored comes back --------------------------------------------------

# Characters each Specific Character Set can carry in text (no backslash: it separates values),
# and the names' ideographic and phonetic groups where the character set has them.
ASCII = [chr(c) for c in range(0x20, 0x7F) if chr(c) != "\\"]
LATIN = ["ä", "ö", "ü", "ß", "é", "ñ", "ç", "å", "Ø", "Æ"]
WIDE = ["山", "田", "太", "郎", "花", "子", "鈴", "木", "や", "ま", "だ", "た", "ろ", "う"]
CHARSETS: dict[str | None, tuple[list[str], list[str]]] = {
    None: (ASCII, []),
    "ISO_IR 100": (ASCII + LATIN, []),
    # Greek and Cyrillic too, written as code points (ruff flags look-alikes of Latin letters).
    "ISO_IR 192": (
        ASCII + LATIN + WIDE + [chr(c) for c in (0x391, 0x3BB, 0x3C6, 0x41A, 0x438)],
        WIDE,
    ),
    "\\ISO 2022 IR 87": (ASCII, WIDE),
}
LETTERS = [c for c in ASCII if c.isalpha()]


@st.composite
def person_names(draw: st.DrawFn, charset: str | None) -> str:
    """Up to five components (PS3.5 6.2.1.1), and the other groups the character set allows."""

    def group(alphabet: list[str]) -> str:
        parts = draw(st.lists(st.text(alphabet, min_size=1, max_size=8), min_size=1, max_size=5))
        return "^".join(parts)

    wide = CHARSETS[charset][1]
    groups = [group(LETTERS)]
    if wide:
        groups += draw(st.lists(st.just(None), max_size=2).map(lambda g: [group(wide) for _ in g]))
    return "=".join(groups)


def texts(charset: str | None, max_size: int) -> st.SearchStrategy[str]:
    return st.text(CHARSETS[charset][0], max_size=max_size).map(str.strip)


def decimal_strings() -> st.SearchStrategy[str]:
    """DS values of at most 16 characters (PS3.5 Table 6.2-1)."""
    return st.builds(
        lambda n, places: f"{n / 10**places:.{places}f}",
        st.integers(-(10**8), 10**8),
        st.integers(0, 5),
    )


def times() -> st.SearchStrategy[str]:
    """TM to the hour, minute, second or fraction (PS3.5 Table 6.2-1)."""
    return st.builds(
        lambda t, precision: t.strftime("%H%M%S.%f")[: (2, 4, 6, 8, 13)[precision]],
        st.times(),
        st.integers(0, 4),
    )


def datetimes() -> st.SearchStrategy[str]:
    """DT to the day, minute or second, maybe with a fraction, maybe with an offset from UTC
    (PS3.5 Table 6.2-1: YYYYMMDDHHMMSS.FFFFFF&ZZXX)."""

    def written(t: datetime, precision: int, offset: str) -> str:
        text = f"{t.year:04}{t.month:02}{t.day:02}{t.hour:02}{t.minute:02}{t.second:02}"
        text += f".{t.microsecond:06}"
        return text[: (8, 12, 14, 17, 21)[precision]] + offset

    offsets = st.sampled_from(["", "+0000", "-0500", "+0530", "+1400", "-1200"])
    return st.builds(written, st.datetimes(), st.integers(0, 4), offsets)


def codes(charset: str | None) -> st.SearchStrategy[Dataset]:
    """A code item (PS3.3 Table 8.8-1): value, scheme and meaning, the meaning in ``charset``."""

    def code(value: str, scheme: str, meaning: str) -> Dataset:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
        return item

    return st.builds(
        code,
        st.text("ABCXYZ0123456789-.", min_size=1, max_size=16),
        st.sampled_from(["SCT", "DCM", "99DWC"]),
        texts(charset, 64).filter(bool),
    )


def requested_protocols(charset: str | None) -> st.SearchStrategy[list[Dataset]]:
    """Request Attributes Sequence items, each with a Requested Procedure ID and a Scheduled
    Protocol Code Sequence of codes inside it: a sequence two deep."""

    def item(procedure: str, protocols: list[Dataset]) -> Dataset:
        ds = Dataset()
        ds.RequestedProcedureID = procedure
        ds.ScheduledProtocolCodeSequence = protocols
        return ds

    return st.lists(
        st.builds(
            item,
            st.text("ABC0123456789", min_size=1, max_size=16),
            st.lists(codes(charset), min_size=1, max_size=2),
        ),
        min_size=1,
        max_size=2,
    )


def everyday_floats(width: Literal[32, 64]) -> st.SearchStrategy[float]:
    """0, or a float of either sign between 2**-20 and 2**31 (in ``width`` bits)."""
    magnitudes = st.floats(2.0**-20, 2.0**31, width=width)
    signed = st.builds(lambda m, sign: sign * m, magnitudes, st.sampled_from([1.0, -1.0]))
    return st.one_of(st.just(0.0), signed)


def element_values(charset: str | None) -> dict[tuple[int, str], st.SearchStrategy[Any]]:
    """Each attribute a generated instance may carry, by (tag, VR): its values."""
    private = synthetic.GENERATED_GROUP << 16
    return {
        (0x0008002A, "DT"): datetimes(),  # Acquisition DateTime
        (0x00082218, "SQ"): st.lists(codes(charset), min_size=1, max_size=3),  # Anatomic Region
        (0x00400275, "SQ"): requested_protocols(charset),  # Request Attributes
        (0x00700084, "PN"): person_names(charset),  # Content Creator's Name
        (0x00204000, "LT"): st.text(CHARSETS[charset][0], max_size=200).map(str.rstrip),
        (0x00082111, "ST"): texts(charset, 100),  # Derivation Description
        (0x00080023, "DA"): st.dates().map(lambda d: f"{d.year:04}{d.month:02}{d.day:02}"),
        (0x00080033, "TM"): times(),  # Content Time
        (0x00200013, "IS"): st.integers(-(2**31) + 1, 2**31 - 1).map(str),  # Instance Number
        (0x00281050, "DS"): st.lists(decimal_strings(), min_size=1, max_size=3),  # Window Center
        (0x00080008, "CS"): st.lists(
            st.text("ABCDEFXYZ_0123456789", min_size=1, max_size=16), min_size=2, max_size=4
        ),  # Image Type
        (private | 0x1001, "US"): st.lists(st.integers(0, 2**16 - 1), min_size=1, max_size=12),
        # Floats of every size are the next property's: Orthanc wraps an integral one of 2**31
        # or more, and writes one below about 1e-15 as 0, and those bugs must not hide the
        # others a round trip can show.
        (private | 0x1002, "FL"): everyday_floats(32),
        (private | 0x1003, "FD"): everyday_floats(64),
        (private | 0x1004, "SL"): st.integers(-(2**31), 2**31 - 1),
        (private | 0x1005, "SS"): st.lists(st.integers(-(2**15), 2**15 - 1), max_size=3),
        (private | 0x1006, "LO"): texts(charset, 64),
    }


Drawn = tuple[str | None, list[tuple[int, str, Any]]]  # a character set, (tag, VR, value)s


@st.composite
def generated(draw: st.DrawFn) -> Drawn:
    """A character set and the attributes, with their values, of one instance."""
    charset = draw(st.sampled_from(list(CHARSETS)))
    strategies = element_values(charset)
    chosen = draw(st.lists(st.sampled_from(sorted(strategies)), min_size=1, unique=True))
    return charset, [(tag, vr, draw(strategies[(tag, vr)])) for tag, vr in sorted(chosen)]


class RoundTrip:
    """Stores generated instances into one study of the run's, each with a fresh SOP UID.

    Under ``--dicomweb-hypothesis=ci`` the examples drawn ahead are stored in one STOW
    (``ahead``, explore's ``before``) and then only read back, together; an example the
    store did not take (any answer but 200) is stored on its own when asked, as it always was."""

    def __init__(self, client: Client, study: EmptyStudy) -> None:
        self.client = client
        self.study = study
        self.count = 0
        self.stored: dict[str, Any] = {}  # repr((charset, elements)) -> its instance, stored

    def make(self, charset: str | None, elements: list[tuple[int, str, Any]]) -> Any:
        self.count += 1
        return synthetic.generated_instance(
            self.study.patient_id,
            self.study.study_uid,
            f"{self.study.study_uid}.1.{self.count}",
            charset,
            elements,
        )

    def ahead(self, drawn: list[Drawn]) -> None:
        """Every example drawn ahead, stored in one request. Only those its answer lists as
        stored (Referenced SOP Sequence) are then read back as they are: any other is stored
        on its own when asked, so a server that loses instances of a larger store is judged by
        this property as asking in turn judges it (the store's own checks judge the rest)."""
        made = {repr(d): self.make(*d) for d in drawn}
        response = stow(self.client, made.values(), self.study.study_uid)
        try:
            answer = response.json() if response.status_code == 200 else None
            listed = set(referenced_sop_uids(answer)) if isinstance(answer, dict) else set()
        except (ValueError, ProtocolError):  # not DICOM JSON: each is stored on its own
            return
        self.stored.update({key: i for key, i in made.items() if i.sop_uid in listed})

    def store(self, charset: str | None, elements: list[tuple[int, str, Any]]) -> Any:
        stored = self.stored.get(repr((charset, elements)))
        if stored is not None:
            return stored
        instance = self.make(charset, elements)
        response = stow(self.client, [instance], self.study.study_uid)
        expect.precondition(
            response.status_code == 200,
            f"the generated instance could be stored (answered {response.status_code})",
        )
        return instance


def _shown(charset: str | None, elements: list[tuple[int, str, Any]]) -> str:
    return f"charset {charset!r}, " + ", ".join(f"({t:08X} {vr}) {v!r}" for t, vr, v in elements)


@pytest.mark.requirement("JSON-METADATA-EQUALS-STORED")
def test_metadata_of_a_generated_instance_is_what_was_stored(
    dicomweb: Client, empty_study: EmptyStudy
) -> None:
    """Every attribute stored comes back in the metadata, with its VR and values (Annex F).
    The Specific Character Set, which tells how the stored bytes were encoded (JSON is always
    UTF-8), is held to its stored value by the next property, on its own."""
    trip = RoundTrip(dicomweb, empty_study)

    def holds(drawn: Drawn) -> None:
        instance = trip.store(*drawn)
        response, obj = expect.instance_metadata(dicomweb, instance)
        wrong = [
            what
            for tag, what in json_differences(obj, instance.dataset)
            if tag != SPECIFIC_CHARACTER_SET
        ]
        if wrong:
            raise AssertionError(
                f"{expect.request_line(response)}: {'; '.join(wrong[:5])} (stored: "
                f"{_shown(*drawn)})"
            )

    explore("metadata round trip", generated(), holds, ask_first=dicomweb, before=trip.ahead)


NUMBERS = {
    "FL": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "FD": st.floats(allow_nan=False, allow_infinity=False),
    "SL": st.integers(-(2**31), 2**31 - 1),
    "UL": st.integers(0, 2**32 - 1),
    "SS": st.integers(-(2**15), 2**15 - 1),
    "US": st.integers(0, 2**16 - 1),
}


@st.composite
def numbers(draw: st.DrawFn) -> Drawn:
    """One private element of a binary number VR, one to three values of any size."""
    vr = draw(st.sampled_from(sorted(NUMBERS)))
    values = draw(st.lists(NUMBERS[vr], min_size=1, max_size=3))
    return None, [((synthetic.GENERATED_GROUP << 16) | 0x1010, vr, values)]


@pytest.mark.requirement("JSON-METADATA-EQUALS-STORED")
def test_metadata_keeps_numbers_of_every_size(dicomweb: Client, empty_study: EmptyStudy) -> None:
    """Binary numbers (FL, FD, SL, UL, SS, US) come back with their value, whatever its size:
    Annex F writes them as JSON numbers, which hold every one of them."""
    trip = RoundTrip(dicomweb, empty_study)

    def holds(drawn: Drawn) -> None:
        instance = trip.store(*drawn)
        response, obj = expect.instance_metadata(dicomweb, instance)
        wrong = [what for tag, what in json_differences(obj, instance.dataset) if tag[:4] == "0099"]
        if wrong:
            raise AssertionError(
                f"{expect.request_line(response)}: {'; '.join(wrong)} (stored: {_shown(*drawn)})"
            )

    explore("numbers", numbers(), holds, ask_first=dicomweb, before=trip.ahead)


@pytest.mark.requirement("JSON-METADATA-EQUALS-STORED")
def test_metadata_keeps_the_stored_character_set(dicomweb: Client, empty_study: EmptyStudy) -> None:
    """Specific Character Set (0008,0005) comes back with the values stored, the empty first
    value of a code-extension set ('\\ISO 2022 IR 87') included."""
    trip = RoundTrip(dicomweb, empty_study)

    name = [(0x00700084, "PN", "Yamada^Tarou")]

    def holds(charset: str) -> None:
        instance = trip.store(charset, name)
        response, obj = expect.instance_metadata(dicomweb, instance)
        wrong = [
            w for t, w in json_differences(obj, instance.dataset) if t == SPECIFIC_CHARACTER_SET
        ]
        if wrong:
            raise AssertionError(f"{expect.request_line(response)}: {wrong[0]}")

    explore(
        "character sets",
        st.sampled_from([c for c in CHARSETS if c is not None]),
        holds,
        ask_first=dicomweb,
        before=lambda charsets: trip.ahead([(c, name) for c in charsets]),
    )


@pytest.mark.requirement("WADO-INSTANCE-EXACTLY-ONE")
def test_a_generated_instance_is_retrieved_as_it_was_stored(
    dicomweb: Client, empty_study: EmptyStudy
) -> None:
    """The instance retrieved equals the one stored, element for element."""
    trip = RoundTrip(dicomweb, empty_study)

    def holds(drawn: Drawn) -> None:
        instance = trip.store(*drawn)
        try:
            expect.stored_and_retrievable(dicomweb, [instance])
        except AssertionError as error:
            raise AssertionError(f"{error} (stored: {_shown(*drawn)})") from None

    explore("retrieve round trip", generated(), holds, ask_first=dicomweb, before=trip.ahead)


# --- transfer syntaxes: what is asked for, with the same pixels ---------------------------------

# The syntaxes a retrieve may ask for; the lossless ones must give back the stored pixels.
# Not JPEG-LS: asked for JPEG-LS of small images a few dozen times, Orthanc 1.10 and 1.12 die
# (the process is gone; 1.13 survives). A run must not take down the server it judges, all the
# more one in production: every later verdict would be an outage, not a finding.
LOSSLESS = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.5": "RLE Lossless",
    "1.2.840.10008.1.2.4.70": "JPEG Lossless, First-Order Prediction",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
}
LOSSY = {"1.2.840.10008.1.2.4.50": "JPEG Baseline (8 bit)"}
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"


Image = tuple[int, int, int, bytes]  # rows, columns, bits allocated, pixels


def image_elements(image: Image) -> list[tuple[int, str, Any]]:
    rows, columns, bits, pixels = image
    return [
        (0x00280010, "US", rows),
        (0x00280011, "US", columns),
        (0x00280100, "US", bits),
        (0x00280101, "US", bits),
        (0x00280102, "US", bits - 1),
        (0x7FE00010, "OB" if bits == 8 else "OW", pixels),
    ]


@st.composite
def images(draw: st.DrawFn) -> Image:
    """Rows, columns, bits allocated (8 or 16) and the pixel bytes of a grayscale image."""
    rows, columns = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    bits = draw(st.sampled_from([8, 16]))
    size = rows * columns * bits // 8
    pixels = draw(st.binary(min_size=size, max_size=size))
    return rows, columns, bits, pixels


def pixels_of(ds: Any) -> bytes | None:
    """The decoded pixel bytes, or None when no decoder for its syntax is installed."""
    try:
        return bytes(ds.pixel_array.tobytes())
    except Exception:  # pydicom has no decoder for every compressed syntax without plugins
        return None


@pytest.mark.requirement(
    "WADO-PART-TRANSFER-SYNTAX-MATCHES", "WADO-UNSUPPORTED-TRANSFER-SYNTAX-406"
)
def test_a_retrieve_gives_the_transfer_syntax_asked_for_with_the_same_pixels(
    dicomweb: Client, empty_study: EmptyStudy
) -> None:
    """A generated image stored, then asked for in one syntax. A 200 is in that syntax, or in
    the default Explicit VR Little Endian from a server that does not support it (reading
    parameter-ignored: 8.7.7 "media type parameters, that are not valid or not supported shall
    be ignored"); the part's transfer-syntax parameter, if any, names the syntax of its file
    meta (8.7.9); and a lossless one decodes to the stored pixels (where pydicom can decode
    it). Any other status is taken as a refusal: how a syntax the server cannot produce must
    be refused is WADO-UNSUPPORTED-TRANSFER-SYNTAX-406's fixed check (Orthanc answers JPEG 2000
    with 500), and must not hide what it does serve."""
    trip = RoundTrip(dicomweb, empty_study)
    syntaxes = st.sampled_from(sorted({**LOSSLESS, **LOSSY}))

    def holds(drawn: tuple[Image, str]) -> None:
        image, syntax = drawn
        rows, columns, bits, _ = image
        instance = trip.store(None, image_elements(image))
        response = retrieve(dicomweb, instance_path(instance), dicom_accept(syntax))
        name = {**LOSSLESS, **LOSSY}[syntax]
        asked = f"asked for {name} ({syntax}) of a {rows}x{columns} {bits}-bit image"
        if response.status_code != 200:
            response.close()
            return  # not served: refused
        found = parts(dicomweb, response)
        if len(found) != 1:
            raise AssertionError(f"{asked}: {len(found)} parts for one instance")
        declared = multipart.parse_media_type(found[0].content_type or DICOM)[1]
        ds = read_dicom(found[0].body)
        served = str(ds.file_meta.get("TransferSyntaxUID", "(none)"))
        labelled = declared.get("transfer-syntax", served)
        if labelled != served:
            raise AssertionError(
                f"{asked}: the part's transfer-syntax parameter is {labelled}, its file meta "
                f"says {served} (PS3.18 8.7.9: the parameter specifies the part's encoding)"
            )
        if served != syntax:
            if served != EXPLICIT_VR_LITTLE_ENDIAN:
                raise AssertionError(
                    f"{asked}: got {served}, neither the syntax asked for nor the default "
                    f"Explicit VR Little Endian of a server that ignores a transfer-syntax it "
                    f"does not support (PS3.18 8.7.7, 8.7.3.4)"
                )
            expect.chose("parameter-ignored")
        got = pixels_of(ds) if served in LOSSLESS else None
        if got is not None and got != pixels_of(instance.dataset):
            raise AssertionError(f"{asked}: the pixels decode differently from those stored")

    explore(
        "transfer syntaxes",
        st.tuples(images(), syntaxes),
        holds,
        ask_first=dicomweb,
        before=lambda drawn: trip.ahead([(None, image_elements(image)) for image, _ in drawn]),
    )
