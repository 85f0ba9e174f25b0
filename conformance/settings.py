"""Settings: one validated object, built once from command line, environment, config file and ini.

Every setting is declared once in ``OPTIONS``; the same declaration gives its command-line flag
(``--dicomweb-NAME``), environment variable (``DICOMWEB_NAME``), config-file key (``NAME`` in a
TOML file's ``[dicomweb]`` table) and ini key (``dicomweb_NAME``). Precedence is in that order.
Secrets (password, token) have no command-line flag: a flag would show in ``ps`` and shell history.
"""

from __future__ import annotations

import base64
import math
import os
import re
import tomllib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .budget import DEFAULT_READ_ONLY, Budget
from .budget import parse as parse_budget
from .catalog import CAPABILITIES, CORE_CAPABILITIES

AUTH_MODES = ("none", "basic", "bearer", "azure")
CLEANUP_MODES = ("auto", "dicomweb", "orthanc", "none")
AZURE_SCOPE = "https://dicom.healthcareapis.azure.com/.default"
REDACTED = "***"
RUN_ID = re.compile(r"[A-Za-z0-9._-]{1,40}")


class SettingsError(ValueError):
    """A setting is missing or invalid; the message says which and how to fix it."""


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("true or false")


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise ValueError("a number of seconds greater than 0, e.g. 30 or 2.5")
    return number


def _non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise ValueError("a whole number, 0 or more")
    return number


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ValueError("a whole number, 1 or more")
    return number


MAX_DISCOVERED = 100  # studies --dicomweb-studies=auto:N may ask for
AUTO = re.compile(r"auto:(\d+)")


def _names(value: str) -> tuple[str, ...]:
    return tuple(sorted({name.strip() for name in value.split(",") if name.strip()}))


@dataclass(frozen=True)
class Option:
    """One setting and how it is spelled in each source."""

    name: str
    help: str
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] = ()
    secret: bool = False
    flag: bool = False  # a boolean switch on the command line (store_true)
    metavar: str | None = None

    @property
    def cli(self) -> str:
        return "--dicomweb-" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "DICOMWEB_" + self.name.upper()

    @property
    def ini(self) -> str:
        return "dicomweb_" + self.name


OPTIONS: tuple[Option, ...] = (
    Option(
        "config",
        "TOML file with a [dicomweb] table of these settings (keys as below, "
        "without the dicomweb- prefix).",
        metavar="FILE",
    ),
    Option(
        "auth",
        "How to authenticate: none, basic (DICOMWEB_USERNAME/DICOMWEB_PASSWORD), "
        "bearer (DICOMWEB_TOKEN or --dicomweb-token-file) or azure (azure-identity "
        "DefaultAzureCredential). Default: none.",
        choices=AUTH_MODES,
    ),
    Option("username", "User name for basic auth.", metavar="NAME"),
    Option("password", "Password for basic auth (environment or config file only).", secret=True),
    Option("token", "Bearer token (environment or config file only).", secret=True),
    Option("token_file", "File holding the bearer token.", metavar="FILE"),
    Option("azure_scope", f"OAuth scope for azure auth. Default: {AZURE_SCOPE}.", metavar="SCOPE"),
    Option(
        "timeout",
        "Seconds for each request's whole answer, headers and body (not per read). Default: 60.",
        parse=_positive_float,
        metavar="SECONDS",
    ),
    Option(
        "check_timeout",
        "Seconds for each check, all its requests together; past it the check is ERROR and "
        "the run goes on. Default: 300.",
        parse=_positive_float,
        metavar="SECONDS",
    ),
    Option(
        "run_timeout",
        "Seconds for the whole run; the checks left after it are ERROR without asking the "
        "server, and cleanup still runs. Default: 3600.",
        parse=_positive_float,
        metavar="SECONDS",
    ),
    Option(
        "retries",
        "Retries on 429/503 (honouring Retry-After). Default: 2.",
        parse=_non_negative_int,
        metavar="N",
    ),
    Option(
        "concurrency",
        "Requests a check asks at once where their answers do not depend on each other (per "
        "process); 1 asks strictly one after another. Default: 4.",
        parse=_positive_int,
        metavar="N",
    ),
    Option(
        "max_retry_wait",
        "The longest Retry-After (seconds) the suite waits for; a server asking for more has "
        "throttled the check (ERROR). Default: 120.",
        parse=_positive_float,
        metavar="SECONDS",
    ),
    Option(
        "insecure",
        "Do not verify the server's TLS certificate (only for test servers with "
        "self-signed certificates).",
        parse=_bool,
        flag=True,
    ),
    Option(
        "samples",
        "Directory with your own copies of the article's blue-circle.dcm, "
        "green-square.dcm and red-triangle.dcm. Default: the suite's generated files.",
        metavar="DIR",
    ),
    Option(
        "article_uids",
        "Store the samples with the article's own UIDs instead of fresh "
        "per-run UIDs (serial runs only; the study must not exist on the server yet).",
        parse=_bool,
        flag=True,
    ),
    Option(
        "cleanup",
        "How to remove what the run stored: auto (DICOMweb DELETE, else Orthanc's "
        "REST API, else leave it and report), dicomweb, orthanc or none. Default: auto.",
        choices=CLEANUP_MODES,
    ),
    Option(
        "orthanc_url",
        "Root of Orthanc's native REST API for cleanup. Default: the base URL "
        "without its last path segment (e.g. /dicom-web).",
        metavar="URL",
    ),
    Option(
        "run_id",
        "Identifier marking this run's data (PatientID DWC-<id>); a run id that already has "
        "data on the server is refused. Default: a fresh random one.",
        metavar="ID",
    ),
    Option(
        "read_only",
        "Send no POST, PUT, PATCH or DELETE: run only the checks that need no write (on the "
        "studies named by --dicomweb-studies) and list the others as DISABLED.",
        parse=_bool,
        flag=True,
    ),
    Option(
        "studies",
        "Comma-separated StudyInstanceUIDs of studies already on the server, or auto:N for the "
        f"N most recent studies a search lists (N up to {MAX_DISCOVERED}), for the checks of a "
        "read-only run.",
        parse=_names,
        metavar="UIDS",
    ),
    Option(
        "read_budget",
        "The most the run may read of the server: REQUESTS,SIZE (e.g. 2000,250MB), or none. "
        "Past it no request is sent and the checks left are DISABLED. Default: "
        f"{DEFAULT_READ_ONLY.requests},{DEFAULT_READ_ONLY.bytes // 10**6}MB in a read-only run, "
        "none in a run that stores its own data.",
        parse=lambda value: parse_budget(value) or "none",
        metavar="N,SIZE",
    ),
    Option(
        "purge",
        "Run no checks: list (list) or delete (delete) the studies earlier runs of the suite "
        "left on the server, found by their marker (PatientID DWC-<run id>, or DWC-* without "
        "--dicomweb-run-id).",
        choices=("list", "delete"),
    ),
    Option(
        "profile",
        "Server profile: standard (default), azure-v2, azure-v1, google, dcm4chee, orthanc, "
        "tiny-pacs, or the path of your own .toml. It declares optional capabilities and the "
        "vendor's documented departures.",
        metavar="NAME",
    ),
    Option(
        "expectations",
        "TOML file of expected verdicts (known deviations of this deployment); a verdict that "
        "differs from its entry fails the run.",
        metavar="FILE",
    ),
    Option(
        "strict",
        "Treat a broken SHOULD (verdict NON-STRICT) as a failure.",
        parse=_bool,
        flag=True,
    ),
    Option(
        "disable",
        "Comma-separated capabilities whose checks are switched off (verdict DISABLED), "
        "e.g. delete,changefeed.",
        parse=_names,
        metavar="CAPS",
    ),
    Option(
        "results",
        "Write the run's verdicts as JSON (per check and per requirement) to this file.",
        metavar="FILE",
    ),
    Option(
        "mode",
        "What the run is for: certify (a vendor's publishable run: every check, no "
        "expectations file, no core capability switched off), nightly (an expectations file "
        "is required and a stale entry fails the run), smoke (the article's walkthrough only, "
        "seconds). Default: none of these.",
        choices=("certify", "nightly", "smoke"),
    ),
    Option(
        "hypothesis",
        "How hard the property checks search for a counterexample: ci (the default: a fixed, "
        "reproducible set of examples, seconds) or deep (many more, random; for nightly runs).",
        choices=("ci", "deep"),
    ),
    Option(
        "server_name",
        "What the server is, as reports should name it, e.g. 'Orthanc 1.10.1 with the DICOMweb "
        "plugin 1.7' (its Server header is reported too). Default: what the server says of "
        "itself (Orthanc's /system when its REST API does the cleanup, else its Server header).",
        metavar="TEXT",
    ),
)


@dataclass(frozen=True)
class Settings:
    """Everything the suite needs to know about the server and the run; built once, read-only."""

    base_url: str
    auth: str = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    azure_scope: str = AZURE_SCOPE
    timeout: float = 60.0
    check_timeout: float = 300.0
    run_timeout: float = 3600.0
    retries: int = 2
    concurrency: int = 4
    max_retry_wait: float = 120.0
    insecure: bool = False
    samples: Path | None = None
    article_uids: bool = False
    cleanup: str = "auto"
    orthanc_url: str | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    run_id_given: bool = False  # False: the default, fresh and random
    read_only: bool = False
    studies: tuple[str, ...] = ()
    read_budget: Budget | str | None = None  # "none": no budget; None: the default
    purge: str | None = None
    profile: str = "standard"
    expectations: Path | None = None
    strict: bool = False
    disable: tuple[str, ...] = ()
    results: Path | None = None
    server_name: str | None = None
    mode: str | None = None
    hypothesis: str = "ci"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in output, evidence or reports (a basic credential
        also as it goes on the wire, in base64)."""
        found = [s for s in (self.password, self.token) if s]
        if self.password:
            pair = f"{self.username or ''}:{self.password}".encode()
            found.append(base64.b64encode(pair).decode("ascii"))
        return tuple(found)

    @property
    def discover(self) -> int | None:
        """N of --dicomweb-studies=auto:N (None: the studies are named, or none)."""
        match = AUTO.fullmatch(self.studies[0]) if len(self.studies) == 1 else None
        return int(match[1]) if match else None

    @property
    def writes(self) -> bool:
        """Whether the run may store and delete (not read-only, store not switched off)."""
        return not self.read_only and "store" not in self.disable

    @property
    def budget(self) -> Budget | None:
        """The run's read budget: as given, else the default of a run that stores nothing."""
        if isinstance(self.read_budget, Budget):
            return self.read_budget
        if self.read_budget == "none" or self.writes:
            return None
        return DEFAULT_READ_ONLY

    def redacted(self) -> dict[str, Any]:
        """The settings as shown to people: secrets replaced, paths as strings."""
        shown: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("password", "token") and value:
                value = REDACTED
            if isinstance(value, Budget):
                value = value.described()
            shown[f.name] = str(value) if isinstance(value, Path) else value
        return shown

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.redacted().items())
        return f"Settings({body})"


def _load_config_file(path: str) -> dict[str, str]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
    table = data.get("dicomweb")
    if not isinstance(table, dict):
        raise SettingsError(f"config file {path} has no [dicomweb] table")
    known = {o.name for o in OPTIONS} - {"config"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise SettingsError(
            f"config file {path}: unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    return {
        k: v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in table.items()
    }


def _check_mode(settings: Settings) -> None:
    """The settings a mode promises (what it needs of the run itself is checked at collection)."""
    if settings.mode == "certify":
        refused = []
        if settings.expectations:
            refused.append("an expectations file (a certifying run hides no verdict)")
        core = sorted(set(settings.disable) & set(CORE_CAPABILITIES))
        if core:
            refused.append(f"core capabilities switched off ({', '.join(core)})")
        if settings.read_only:
            refused.append("--dicomweb-read-only (most checks would not run)")
        if refused:
            raise SettingsError("--dicomweb-mode=certify refuses " + "; ".join(refused))
    if settings.mode == "nightly" and not settings.expectations:
        raise SettingsError(
            "--dicomweb-mode=nightly needs --dicomweb-expectations: the verdicts the gate holds "
            "the server to (write one with dicomweb-conformance baseline)"
        )


def resolve(
    base_url: str | None,
    cli: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    ini: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the sources (command line > environment > config file > ini) and validate.

    ``cli`` maps option names to parsed command-line values (None or False when not given).
    """
    env = os.environ if env is None else env
    ini = ini or {}

    def raw(option: Option, file_values: Mapping[str, str]) -> tuple[Any, str] | None:
        value = None if option.secret else cli.get(option.name)
        if value not in (None, False):
            return value, option.cli
        if env.get(option.env, "") != "":
            return env[option.env], option.env
        if option.name in file_values:
            return file_values[option.name], f"config file key {option.name}"
        if ini.get(option.ini, "") not in ("", None):
            return ini[option.ini], f"ini {option.ini}"
        return None

    config_source = raw(OPTIONS[0], {})
    file_values = _load_config_file(str(config_source[0])) if config_source else {}

    values: dict[str, Any] = {}
    for option in OPTIONS[1:]:
        found = raw(option, file_values)
        if found is None:
            continue
        value, source = found
        if isinstance(value, str):
            if option.choices and value not in option.choices:
                raise SettingsError(
                    f"{source} takes one of {', '.join(option.choices)}, not {value!r}"
                )
            try:
                value = option.parse(value)
            except ValueError as exc:
                # The parsers say what the setting takes, never Python's words for what failed.
                raise SettingsError(f"{source} takes {exc}, not {value!r}") from None
        values[option.name] = value

    if not base_url:
        raise SettingsError(
            "no server given: pass --base-url=https://host/dicom-web (or set PYTEST_BASE_URL)"
        )
    parts = urlsplit(base_url)
    if parts.username is not None or parts.password is not None:
        # Never echoed: the URL itself holds the secret.
        raise SettingsError(
            "--base-url carries credentials (user:password@host): give them with "
            "--dicomweb-auth=basic, DICOMWEB_USERNAME and DICOMWEB_PASSWORD (or a bearer "
            "token), never inside the URL, which is printed in every report"
        )
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(
            f"--base-url {base_url!r} is not an http(s) URL such as https://host/v2"
        )
    for key in ("samples", "token_file", "expectations", "results"):
        if key in values:
            values[key] = Path(values[key]).expanduser()
    if "run_id" in values:
        if not RUN_ID.fullmatch(values["run_id"]):
            raise SettingsError(
                f"--dicomweb-run-id {values['run_id']!r}: use 1 to 40 letters, digits, '.', "
                "'_' or '-' (it becomes the PatientID DWC-<run id> that marks the run's data)"
            )
        values["run_id_given"] = True
    settings = Settings(base_url=base_url.rstrip("/"), **values)
    _check_auth(settings)
    auto = [s for s in settings.studies if s.startswith("auto")]
    if auto and (len(settings.studies) > 1 or not 1 <= (settings.discover or 0) <= MAX_DISCOVERED):
        raise SettingsError(
            f"--dicomweb-studies takes UIDs or auto:N alone (N from 1 to {MAX_DISCOVERED}), "
            f"not {','.join(settings.studies)!r}"
        )
    if settings.read_only and not settings.studies:
        raise SettingsError(
            "--dicomweb-read-only needs --dicomweb-studies: the UIDs of studies already on the "
            "server that the read-only checks may read"
        )
    _check_mode(settings)
    unknown = sorted(set(settings.disable) - set(CAPABILITIES))
    if unknown:
        raise SettingsError(
            f"--dicomweb-disable: unknown capability {', '.join(unknown)}; "
            f"known: {', '.join(CAPABILITIES)}"
        )
    if settings.samples is not None and not settings.samples.is_dir():
        raise SettingsError(f"--dicomweb-samples: {settings.samples} is not a directory")
    return settings


def _check_auth(s: Settings) -> None:
    if s.auth == "basic" and not (s.username and s.password):
        raise SettingsError(
            "auth=basic needs DICOMWEB_USERNAME (or --dicomweb-username) and DICOMWEB_PASSWORD"
        )
    if s.auth == "bearer":
        if not s.token and not s.token_file:
            raise SettingsError("auth=bearer needs DICOMWEB_TOKEN or DICOMWEB_TOKEN_FILE")
        if s.token_file and not s.token and not s.token_file.is_file():
            raise SettingsError(f"token file not found: {s.token_file}")
    if s.auth == "none" and (s.password or s.token):
        raise SettingsError(
            "a password or token is set but auth is none: set DICOMWEB_AUTH=basic or bearer"
        )
