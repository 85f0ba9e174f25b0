"""Faults of the http checks (see tests/faults/__init__.py).

Each one is a bug seen in DICOMweb servers or the HTTP layers in front of them: framework defaults
(application/json for DICOM JSON, a 405 without Allow, a 400 for a method without a route), a
Warning in free text, a store handler whose parser's exception escapes as 500, a CORS layer that
answers OPTIONS itself. The faults of the DICOM JSON bodies are tests/faults/dicomjson.py's.

They are proven by the catalog run (tests/test_catalog_faults.py), but one: the malformed Warning,
which tests/test_http_auth_orthanc.py proves (Orthanc sends no Warning, so the check is INFO
there, not PASS). The authentication faults are tests/faults/auth.py's.
"""

from __future__ import annotations

from conformance import multipart

from . import Answer, Exchange, Forward, fault, header, is_dicom_json

HTTP = "test_http.py::"


def with_header(answer: Answer, name: str, value: str | None) -> Answer:
    """The answer with one header replaced (or removed, for None)."""
    headers = {k: v for k, v in answer.headers.items() if k.lower() != name.lower()}
    if value is not None:
        headers[name] = value
    return Answer(answer.status, headers, answer.body)


# --- the media type ---------------------------------------------------------------------------


@fault(
    "json-served-as-application-json",
    catches=[
        f"test_http.py::test_dicom_json_answers_are_application_dicom_json[{kind}]"
        for kind in ("study-metadata", "studies-search", "store-response")
    ],
)
def json_served_as_application_json(request: Exchange, forward: Forward) -> Answer:
    """A web framework's default media type for JSON: application/json."""
    answer = forward(request)
    if not is_dicom_json(answer):
        return answer
    return with_header(answer, "Content-Type", "application/json")


# --- methods and headers ----------------------------------------------------------------------

PUTS = ["PUT studies/{study}"]


@fault(
    "405-without-allow",
    catches=[f"test_http.py::test_405_lists_the_allowed_methods[{name}]" for name in PUTS],
)
def method_not_allowed_without_allow(request: Exchange, forward: Forward) -> Answer:
    """A router that answers 405 but forgets the Allow header."""
    answer = forward(request)
    return with_header(answer, "Allow", None) if answer.status == 405 else answer


@fault(
    "unsupported-method-400",
    catches=[f"test_http.py::test_unsupported_method_is_405[{name}]" for name in PUTS],
)
def unsupported_method_400(request: Exchange, forward: Forward) -> Answer:
    """A method the server has no route for, answered 400 Bad Request (what Orthanc does with
    PATCH)."""
    if request.method == "PUT":
        return Answer(400, {}, b"")
    return forward(request)


# Not in the catalog run: the check is INFO on an Orthanc that sends no Warning at all, so
# tests/test_http_auth_orthanc.py proves this fault.
@fault(
    "malformed-warning-header",
    [f"{HTTP}test_warning_headers_follow_the_http_grammar"],
    test="test_http_auth_orthanc.py",
)
def malformed_warning_header(request: Exchange, forward: Forward) -> Answer:
    """A search that warns in free text, without warn-code and warn-agent."""
    answer = forward(request)
    if request.method != "GET" or request.path.endswith("/metadata") or answer.status != 200:
        return answer
    return with_header(answer, "Warning", "Additional results are available")


# --- robustness -------------------------------------------------------------------------------


@fault(
    "stow-garbage-500",
    catches=[
        "test_properties_bad_input.py::test_malformed_requests_get_client_errors_and_harm_nothing"
    ],
)
def stow_garbage_500(request: Exchange, forward: Forward) -> Answer:
    """A store handler that gives every application/dicom part to its DICOM parser unchecked
    and lets the parser's exception escape: a part without the DICM prefix (a cut file, bytes
    that are not DICOM) is answered 500, where the client erred."""
    content_type = header(request.headers, "content-type")
    if request.method != "POST" or not content_type.startswith("multipart/related"):
        return forward(request)
    try:
        root = multipart.parse_media_type(content_type)[1].get("type", "")
        parts = multipart.decode(request.body, content_type)
        kinds = [multipart.parse_media_type(p.content_type or root)[0] for p in parts]
    except multipart.MultipartError:
        return forward(request)
    dicom = [p for p, kind in zip(parts, kinds, strict=True) if kind == "application/dicom"]
    if any(p.body[128:132] != b"DICM" for p in dicom):
        return Answer(500, {"Content-Type": "text/plain"}, b"InvalidDicomFile: no DICM prefix")
    return forward(request)


# --- answers Orthanc leaves open (INFO there), broken -----------------------------------------


@fault(
    "options-answered-by-cors-layer",
    catches=["test_http.py::test_options_lists_the_allowed_methods"],
)
def options_answered_by_cors_layer(request: Exchange, forward: Forward) -> Answer:
    """A CORS layer in front of the server that answers every OPTIONS itself, 204 with its
    Access-Control-Allow-* headers and no Allow: a client cannot learn the methods."""
    if request.method != "OPTIONS":
        return forward(request)
    headers = {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, Content-Type, Accept",
    }
    return Answer(204, headers, b"")


@fault(
    "405-with-untyped-text-body",
    catches=[
        "test_http.py::test_answers_with_a_payload_have_a_content_type[PUT studies/{unknown}]"
    ],
)
def method_not_allowed_with_untyped_body(request: Exchange, forward: Forward) -> Answer:
    """A router whose 405 carries an explanation in plain text but no Content-Type (what
    Orthanc does with its 404 and 400 explanations)."""
    answer = forward(request)
    if answer.status != 405:
        return answer
    answer = with_header(answer, "Content-Type", None)
    return Answer(answer.status, answer.headers, f"{request.method} is not allowed here".encode())
