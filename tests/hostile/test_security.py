"""Key safety and request integrity: where the API key may never appear, which hosts may never
be asked, and which arguments may never change a request's path or query.
"""

from __future__ import annotations

import inspect
import logging
import pickle
import shutil
import ssl
import subprocess
import traceback
import types
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import httpx
import klaviyo_catalog
import klaviyo_catalog_api.methods
import pytest
from hypothesis import given
from hypothesis import strategies as st
from klaviyo_catalog import (
    APIError,
    AsyncCatalogJobs,
    AuthenticationError,
    BadRequestError,
    CatalogJobs,
    ConfigurationError,
    DeadlineExceededError,
    InvalidRequestError,
    InvalidResponseError,
    KlaviyoError,
    MemoryRateLimiter,
    NotFoundError,
    PageLimitExceededError,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    RevisionRetiredError,
    ServerError,
    TransportError,
    WaitTimeoutError,
)
from klaviyo_catalog._core import Core
from klaviyo_catalog._flow import Send
from klaviyo_catalog.testing import FakeKlaviyo, Fault, VirtualClock
from klaviyo_catalog_api.catalog_spec import JOB_STATUSES

from tests.support import documents as docs
from tests.support.hardening_support import (
    FAST_RATES,
    PROFILE,
    SECRET_KEY,
    Mode,
    app_http_client,
    call,
    closed_port,
    json_body,
    options,
    run_async,
)
from tests.support.paths import TESTS
from tests.support.spec_facts import SLASH, path_prefix
from tests.support.virtual_clock import virtual_core

UPDATE_PATH = path_prefix("get_item_update_job")
TESTS_DIR = str(TESTS)
FACADE = str(Path(klaviyo_catalog.__file__).parent)
METHODS = str(Path(klaviyo_catalog_api.methods.__file__))  # the generated public calls


@pytest.fixture
def fake(make_fake: Callable[..., FakeKlaviyo]) -> FakeKlaviyo:
    return make_fake(api_key=SECRET_KEY)


@pytest.fixture
def other_host(make_fake: Callable[..., FakeKlaviyo]) -> FakeKlaviyo:
    """A fake on 127.0.0.2: Linux routes all of 127/8 to loopback, so it is another host to
    httpx (another origin) without leaving the machine. Its request log must stay empty."""
    return make_fake(host="127.0.0.2", api_key=SECRET_KEY)


def opts(fake: FakeKlaviyo, **overrides: Any) -> dict[str, Any]:
    return options(fake.base_url, SECRET_KEY, **{"max_retries": 1, **overrides})


def assert_no_key(*texts: str) -> None:
    for text in texts:
        assert SECRET_KEY not in text
        assert SECRET_KEY[:20] not in text  # not even a prefix


# --- repr and logs ------------------------------------------------------------------------------


@pytest.mark.parametrize("client_class", [CatalogJobs, AsyncCatalogJobs])
def test_repr_and_attributes_of_a_client_never_show_the_key(
    client_class: type[CatalogJobs] | type[AsyncCatalogJobs],
) -> None:
    client = client_class(SECRET_KEY, base_url="https://a.klaviyo.com")
    try:
        assert_no_key(repr(client), str(client), repr(vars(client)))
    finally:
        if isinstance(client, CatalogJobs):
            client.close()
        else:
            run_async(client.aclose())


def test_no_log_record_at_any_level_carries_the_key(
    mode: Mode, fake: FakeKlaviyo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root: klaviyo_catalog, httpx and httpcore alike
    for name in ("klaviyo_catalog", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    job_id = fake.add_job("item-update", items=2)
    for fault in (Fault.status(503), Fault.rate_limited("0"), Fault.reset(), Fault.status(502)):
        fake.inject(fault)
    call(mode, opts(fake, max_retries=4), "get_item_update_job", job_id, include=["items"])
    fake.inject(Fault.status(401), times=5)
    with pytest.raises(AuthenticationError):
        call(mode, opts(fake), "list_item_create_jobs")
    # An app's own client goes through httpx's `send`, which logs each request (the client's
    # own pool sends straight to its transport).
    with pytest.raises(AuthenticationError):
        call(mode, opts(fake), "list_item_create_jobs", http=app_http_client)
    names = {record.name.split(".")[0] for record in caplog.records}
    assert {"klaviyo_catalog", "httpx", "httpcore"} <= names  # everything was captured
    for record in caplog.records:
        assert_no_key(record.getMessage(), repr(record.args), str(record.exc_text))
    assert_no_key(caplog.text)


# --- every error class, as text ------------------------------------------------------------------


def provoke(
    mode: Mode, fake: FakeKlaviyo
) -> Iterator[tuple[type[KlaviyoError], Callable[[], Any]]]:
    """(expected error class, a call that raises it) for every class a client can raise."""
    job_id = fake.add_job("item-update", status="processing")

    def run(
        *args: Any,
        faults: tuple[Fault, ...] = (),
        times: int = 5,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> Any:
        def go() -> Any:
            for fault in faults:
                fake.inject(fault, times=times)
            budget = {} if deadline is None else {"deadline": deadline}
            return call(mode, opts(fake, timeout=0.2, **budget), *args, **kwargs)

        return go

    def wait() -> Any:
        job = call(mode, opts(fake), "get_item_update_job", job_id)
        return call(mode, opts(fake), "wait_for_job", job, poll_interval=0.01, timeout=0.03)

    def wrong_key() -> Any:
        return call(mode, options(fake.base_url, SECRET_KEY + "x"), "get_item_update_job", "J")

    yield ConfigurationError, lambda: CatalogJobs(SECRET_KEY, base_url="http://example.com")
    yield ConfigurationError, lambda: CatalogJobs(SECRET_KEY, max_retries=-1)
    yield ConfigurationError, lambda: CatalogJobs(SECRET_KEY + "\r\n")
    yield InvalidRequestError, run("get_item_update_job", " ")
    yield InvalidRequestError, run("get_item_update_job", "J", fields={"catalog-item": ["key"]})
    yield AuthenticationError, wrong_key
    yield BadRequestError, run("list_item_create_jobs", cursor="nope")
    yield PermissionDeniedError, run("get_item_update_job", "J", faults=(Fault.html(403),))
    yield NotFoundError, run("get_item_update_job", "NO-SUCH-JOB")
    yield RateLimitError, run("list_item_create_jobs", faults=(Fault.rate_limited("0"),))
    yield ServerError, run("get_item_update_job", job_id, faults=(Fault.status(503),))
    yield APIError, run("get_item_update_job", "J", faults=(json_body(docs.error(409, "x"), 409),))
    gone = json_body(docs.error(410, "gone"), 410)
    yield RevisionRetiredError, run("get_item_update_job", "J", faults=(gone,))
    yield TransportError, run("get_item_update_job", job_id, faults=(Fault.reset(),))
    yield TransportError, run("get_item_update_job", job_id, faults=(Fault.delay(0.5),))
    dead = options(f"http://127.0.0.1:{closed_port()}", SECRET_KEY, max_retries=0)
    yield TransportError, lambda: call(mode, dead, "list_item_create_jobs")
    yield InvalidResponseError, run("get_item_update_job", "J", faults=(Fault.truncated(),))
    yield InvalidResponseError, run("list_item_create_jobs", faults=(json_body({"data": 1}),))
    unusable = json_body({"data": [], "links": {"next": "/?no-cursor"}})
    yield PaginationError, run("iter_item_create_jobs", faults=(unusable,))
    yield WaitTimeoutError, wait
    delayed = (Fault.delay(0.5),)
    yield DeadlineExceededError, run("get_item_update_job", job_id, faults=delayed, deadline=0.1)
    fake.add_jobs("item-create", 101)  # two pages
    yield PageLimitExceededError, run("iter_item_create_jobs", max_pages=1)


def library_locals(error: BaseException) -> list[str]:
    """The local variables of every frame of the error's traceback and of the exceptions chained
    to it, as reprs; all but the tests' own frames, whose locals hold the key as an argument."""
    found: list[str] = []
    pending = [traceback.TracebackException.from_exception(error, capture_locals=True)]
    while pending:
        exception = pending.pop()
        for frame in exception.stack:
            if not frame.filename.startswith(TESTS_DIR) and frame.locals:
                found += [f"{frame.name}: {name}={value}" for name, value in frame.locals.items()]
        pending += [e for e in (exception.__cause__, exception.__context__) if e is not None]
    return found


def library_frames(error: BaseException) -> list[types.FrameType]:
    """The frames of the error's chain that are neither the tests' nor the facade's, nor the
    generated public calls' (whose locals include the client, which holds the key by design)."""
    frames: list[types.FrameType] = []
    pending: list[BaseException | None] = [error]
    while pending:
        exception = pending.pop()
        if exception is None:
            continue
        for frame, _ in traceback.walk_tb(exception.__traceback__):
            if not frame.f_code.co_filename.startswith((TESTS_DIR, FACADE, METHODS)):
                frames.append(frame)
        pending += [exception.__cause__, exception.__context__]
    return frames


def key_paths(root: object, needle: str = SECRET_KEY[:20]) -> list[str]:
    """Where the key (or its first 20 characters; or another `needle`) can be reached from
    `root` by attributes, containers, headers and chained exceptions, as an error tracker's
    serializer would walk."""
    found: list[str] = []
    seen: set[int] = set()
    pending: list[tuple[str, object, int]] = [("error", root, 0)]
    while pending:
        path, value, depth = pending.pop()
        if id(value) in seen or depth > 12:
            continue
        seen.add(id(value))
        children: list[tuple[str, object]] = []
        if isinstance(value, str | bytes | bytearray):
            text = value if isinstance(value, str) else bytes(value).decode("latin-1")
            if needle in text:
                found.append(path)
            continue
        if isinstance(value, type | types.ModuleType | types.FunctionType | types.MethodType):
            continue
        if isinstance(value, httpx.Headers):
            children += [(f"[{k!r}]", v) for k, v in value.raw]
        elif isinstance(value, Mapping):
            children += [(f"[{k!r}]", v) for k, v in value.items()]
            children += [(f".key({k!r})", k) for k in value]
        elif isinstance(value, list | tuple | set | frozenset):
            children += [(f"[{i}]", v) for i, v in enumerate(value)]
        if isinstance(value, BaseException):
            children += [(".args", value.args), (".__cause__", value.__cause__)]
            children.append((".__context__", value.__context__))
        for name in getattr(value, "__dict__", {}):
            children.append((f".{name}", getattr(value, name)))
        for cls in type(value).__mro__:
            for name in getattr(cls, "__slots__", ()):
                if hasattr(value, name):
                    children.append((f".{name}", getattr(value, name)))
        pending += [(path + step, child, depth + 1) for step, child in children]
    return found


def test_no_error_message_or_traceback_carries_the_key(mode: Mode, fake: FakeKlaviyo) -> None:
    seen: set[type[KlaviyoError]] = set()
    for error_class, action in provoke(mode, fake):
        fake.clear_faults()  # what the previous row left queued
        with pytest.raises(error_class) as caught:
            action()
        error = caught.value
        seen.add(type(error))
        texts = [
            str(error),
            repr(error),
            repr(vars(error)),
            "".join(traceback.format_exception(error)),
        ]
        if not isinstance(error, ConfigurationError):
            # An error tracker may record the local variables of every frame (Sentry does):
            # no frame a request passes through, the facade's, httpx's or httpcore's, holds
            # the key in plain sight. (The constructor does, as its argument;
            # ConfigurationError is raised from there.)
            texts += library_locals(error)
        assert_no_key(*texts)
        # Nor anything the error keeps (its response, that response's request, the httpx
        # error behind it), however deep; and it pickles (to a worker, a queue), key-free.
        assert key_paths(error) == [], type(error)
        # The frames of the libraries beneath (httpx, httpcore) keep no request either.
        assert [path for frame in library_frames(error) for path in key_paths(frame.f_locals)] == []
        pickled = pickle.dumps(error)
        assert SECRET_KEY[:20].encode() not in pickled
        copy = pickle.loads(pickled)
        assert type(copy) is type(error) and str(copy) == str(error)
        assert vars(copy).keys() == vars(error).keys()
    # Every class a client can raise was provoked (KlaviyoError itself never is).
    assert seen == {
        cls
        for cls in vars(klaviyo_catalog).values()
        if isinstance(cls, type) and issubclass(cls, KlaviyoError) and cls is not KlaviyoError
    }


def test_cli_output_never_carries_the_key(
    fake: FakeKlaviyo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = pytest.importorskip("klaviyo_catalog.cli")
    job_id = fake.add_job("item-update", status="processing", items=2)
    fake.add_jobs("item-create", 3)
    monkeypatch.setenv("KLAVIYO_API_KEY", SECRET_KEY)
    monkeypatch.setenv("KLAVIYO_BASE_URL", fake.base_url)
    runs: list[tuple[list[str], int]] = [
        (["jobs", "get", "item-update", job_id, "--include"], 0),
        (["jobs", "get", "item-update", job_id, "--json"], 0),
        (["jobs", "list", "item-create", "--json"], 0),
        (["jobs", "get", "item-update", "NO-SUCH-JOB"], 1),
        (
            ["jobs", "wait", "item-update", job_id, "--timeout", "0.05", "--poll-interval", "0.01"],
            3,
        ),
        (["jobs", "get", "item-update", job_id, "--base-url", "http://example.com"], 2),
    ]
    for argv, code in runs:
        assert cli.main(argv) == code, argv
        out, err = capsys.readouterr()
        assert out or err
        assert_no_key(out, err)
    monkeypatch.setenv("KLAVIYO_API_KEY", SECRET_KEY + "0")  # a wrong key: a 401
    assert cli.main(["jobs", "get", "item-update", job_id]) == 1
    out, err = capsys.readouterr()
    assert "401" in err and SECRET_KEY not in out + err


# --- other hosts ----------------------------------------------------------------------------------


def all_pages(fake: FakeKlaviyo) -> list[dict[str, Any]]:
    """Every page of the item-create listing, straight from the fake."""
    pages: list[dict[str, Any]] = []
    url: str | None = fake.url("item-create")
    while url is not None:
        page = httpx.get(url, headers=fake.headers()).json()
        pages.append(page)
        url = page["links"]["next"]
    return pages


def test_links_next_on_another_host_is_never_requested(mode: Mode, other_host: FakeKlaviyo) -> None:
    with FakeKlaviyo(api_key=SECRET_KEY, page_size=100) as fake:
        wanted = fake.add_jobs("item-create", 250)
        pages = all_pages(fake)
        cursors = [None] + [
            urllib.parse.parse_qs(urllib.parse.urlsplit(p["links"]["next"]).query)["page[cursor]"][
                0
            ]
            for p in pages[:-1]
        ]
        fake.reset_log()
        for page in pages:  # every next link now points at 127.0.0.2, cursor and all
            if page["links"]["next"]:
                page["links"]["next"] = page["links"]["next"].replace(
                    fake.base_url, other_host.base_url
                )
            fake.inject(json_body(page))
        jobs = call(mode, opts(fake), "iter_item_create_jobs")
        assert [job.id for job in jobs] == wanted
        # The walk went on against base_url, taking only the cursor from each link.
        assert [r.query.get("page[cursor]") for r in fake.request_log] == cursors
    assert other_host.request_log == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_by_default(
    mode: Mode, fake: FakeKlaviyo, other_host: FakeKlaviyo, status: int
) -> None:
    location = other_host.base_url + UPDATE_PATH + "J" + SLASH
    fake.inject(Fault.body(status, b"", headers=(("Location", location),)), times=5)
    with pytest.raises(InvalidResponseError, match=f"unexpected HTTP {status}") as caught:
        call(mode, opts(fake), "get_item_update_job", "J")
    assert caught.value.status_code == status
    assert len(fake.request_log) == 1  # not retried either
    assert other_host.request_log == []


def test_an_app_client_that_follows_redirects_does_not_make_the_facade_follow_them(
    mode: Mode, fake: FakeKlaviyo, other_host: FakeKlaviyo
) -> None:
    elsewhere = other_host
    elsewhere.inject(json_body(docs.single(docs.job("J"))))  # what following would get
    location = elsewhere.base_url + UPDATE_PATH + "J" + SLASH
    fake.inject(Fault.body(302, b"", headers=(("Location", location),)))

    def following(mode: Mode) -> httpx.Client | httpx.AsyncClient:
        if mode == "sync":
            return httpx.Client(follow_redirects=True)
        return httpx.AsyncClient(follow_redirects=True)

    with pytest.raises(InvalidResponseError, match="unexpected HTTP 302") as caught:
        call(mode, opts(fake), "get_item_update_job", "J", http=following)
    assert len(fake.request_log) == 1
    assert elsewhere.request_log == []
    response = caught.value.response
    assert response is not None and response.headers["location"] == location
    # httpx's ready-made follow-up request (headers copied, key and all) is dropped.
    assert response.next_request is None
    assert response.request.headers["authorization"] == "[redacted]"


# --- arguments cannot reshape a request ---------------------------------------------------------


def test_a_job_id_cannot_change_the_path_or_add_parameters(mode: Mode, fake: FakeKlaviyo) -> None:
    job_id = "x/../../other?include=y"
    with pytest.raises(NotFoundError) as caught:
        call(mode, opts(fake), "get_item_update_job", job_id)
    (record,) = fake.request_log
    assert record.path == UPDATE_PATH + "x%2F..%2F..%2Fother%3Finclude%3Dy" + SLASH
    assert record.query == {}
    detail = caught.value.errors[0].detail
    assert detail is not None and repr(job_id) in detail  # the server read one whole id


def test_a_cursor_cannot_add_parameters(mode: Mode, fake: FakeKlaviyo) -> None:
    with pytest.raises(BadRequestError):
        call(mode, opts(fake), "list_item_create_jobs", cursor="a&include=items")
    (record,) = fake.request_log
    assert record.query == {"page[cursor]": "a&include=items"}


@pytest.mark.parametrize(
    "status", ['processing"),equals(x', "processing&include=items", "a b", "x\n", "", "é\u0000"]
)
def test_a_status_that_would_reshape_the_filter_is_refused_before_any_request(
    mode: Mode, fake: FakeKlaviyo, status: str
) -> None:
    with pytest.raises(InvalidRequestError):
        call(mode, opts(fake), "list_variant_update_jobs", status=status)
    assert fake.request_log == []


@pytest.mark.parametrize("job_id", ["", " ", "\t\n", ".", ".."])
def test_an_empty_job_id_is_a_value_error_before_any_request(
    mode: Mode, fake: FakeKlaviyo, job_id: str
) -> None:
    with pytest.raises(ValueError):
        call(mode, opts(fake), "get_variant_update_job", job_id)
    assert fake.request_log == []


@pytest.fixture(scope="module")
def core() -> Core:
    return virtual_core(
        VirtualClock(),
        api_key=SECRET_KEY,
        base_url="https://a.klaviyo.com",
        limiter=MemoryRateLimiter(),
        rate_limits=FAST_RATES,
    )


def first_request(flow: Any) -> httpx.Request:
    """The request a flow would send first: the exact object a driver hands to httpx."""
    action = next(flow)
    assert isinstance(action, Send)
    return action.request


# Any string at all, lone surrogates included: a str is what a caller can pass.
ANY_TEXT = st.text(st.characters(), max_size=30)


@PROFILE
@given(ANY_TEXT)
def test_any_job_id_is_one_path_segment_or_refused(core: Core, job_id: str) -> None:
    try:
        request = first_request(core.get_job("get_item_update_job", job_id, None, None))
    except InvalidRequestError:
        return
    path = request.url.raw_path.decode("ascii")
    assert path.startswith(UPDATE_PATH) and path.endswith(SLASH) and "?" not in path
    segment = path[len(UPDATE_PATH) : len(path) - len(SLASH)]
    assert "/" not in segment and urllib.parse.unquote(segment, errors="strict") == job_id
    assert request.url.query == b"" and request.url.host == "a.klaviyo.com"


@PROFILE
@given(ANY_TEXT)
def test_any_cursor_is_one_query_value_or_refused(core: Core, cursor: str) -> None:
    try:
        flow = core.list_page("list_item_create_jobs", status=None, cursor=cursor, fields=None)
        request = first_request(flow)
    except InvalidRequestError:
        return
    # One query item, whose value is the cursor's bytes: a byte that is not UTF-8, held as a
    # surrogate escape ("\udc80"), goes out as itself ("%80"), which httpx's params (text)
    # would show as U+FFFD.
    name, equals, value = request.url.query.partition(b"=")
    assert (name, equals) == (b"page[cursor]", b"=") and b"&" not in value
    assert urllib.parse.unquote_to_bytes(value) == cursor.encode("utf-8", "surrogateescape")
    assert request.url.path == path_prefix("list_item_create_jobs").rstrip("/") + SLASH


@PROFILE
@given(ANY_TEXT)
def test_any_status_is_one_filter_value_or_refused(core: Core, status: str) -> None:
    try:
        flow = core.list_page("list_item_create_jobs", status=status, cursor=None, fields=None)
        request = first_request(flow)
    except InvalidRequestError:
        return
    assert request.url.params.multi_items() == [("filter", f'equals(status,"{status}")')]
    assert status in JOB_STATUSES


# --- transport security ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://a.klaviyo.com",
        "HTTP://A.KLAVIYO.COM",
        "http://10.0.0.5:8080",
        "http://0.0.0.0:8080",
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io",
        "http://[2001:db8::1]",
    ],
)
@pytest.mark.parametrize("client_class", [CatalogJobs, AsyncCatalogJobs])
def test_plain_http_is_refused_for_non_loopback_hosts(
    client_class: type[CatalogJobs] | type[AsyncCatalogJobs], url: str
) -> None:
    with pytest.raises(ConfigurationError, match="https") as caught:
        client_class(SECRET_KEY, base_url=url)
    assert_no_key(str(caught.value))


@pytest.mark.parametrize("bad", ["\u00e9", "\x00", "\t", "\ud800", "\u200b"])
@pytest.mark.parametrize("client_class", [CatalogJobs, AsyncCatalogJobs])
def test_a_key_or_revision_that_cannot_be_a_header_is_refused_at_once(
    client_class: type[CatalogJobs] | type[AsyncCatalogJobs], bad: str
) -> None:
    # Left to httpx, a non-ASCII key fails at request time with a UnicodeEncodeError whose
    # `object` attribute holds the whole Authorization header, key and all.
    with pytest.raises(ConfigurationError, match="API key") as caught:
        client_class(SECRET_KEY[:10] + bad + SECRET_KEY[10:])
    assert_no_key(str(caught.value), repr(vars(caught.value)))
    with pytest.raises(ConfigurationError, match="revision"):
        client_class(SECRET_KEY, revision="2023-01-24" + bad)
    with pytest.raises(ConfigurationError, match="revision"):
        client_class(SECRET_KEY, revision="2023-01-24\r\nX-Injected: 1")


def tls_contexts_made(monkeypatch: pytest.MonkeyPatch) -> list[ssl.SSLContext]:
    """The TLS contexts httpx makes from now on (the clients' own pools share one a process,
    made through httpx's public `create_ssl_context`; the cache of it starts empty)."""
    made: list[ssl.SSLContext] = []
    create = httpx.create_ssl_context

    def recording(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(create(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(httpx, "create_ssl_context", recording)
    klaviyo_catalog._transport._tls_context.cache_clear()
    return made


@pytest.mark.parametrize("client_class", [CatalogJobs, AsyncCatalogJobs])
def test_tls_verification_is_on_by_default_and_no_option_turns_it_off(
    client_class: type[CatalogJobs] | type[AsyncCatalogJobs], monkeypatch: pytest.MonkeyPatch
) -> None:
    made = tls_contexts_made(monkeypatch)
    client = client_class(SECRET_KEY)
    try:
        (context,) = made
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    finally:
        if isinstance(client, CatalogJobs):
            client.close()
        else:
            run_async(client.aclose())
    # Only an app-supplied http_client can change TLS settings: that choice stays the app's.
    parameters = set(inspect.signature(client_class).parameters)
    assert parameters == {
        "api_key",
        "access_token",
        "account",
        "revision",
        "base_url",
        "timeout",
        "max_retries",
        "retry_backoff",
        "deadline",
        "max_retry_after",
        "max_response_bytes",
        "rate_limits",
        "rate_limiter",
        "http_client",
    }


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not on the PATH")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    arguments = "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext"
    san = "subjectAltName=IP:127.0.0.1,DNS:localhost"
    command = [openssl, *arguments.split(), san, "-keyout", str(key), "-out", str(cert)]
    subprocess.run(command, check=True, capture_output=True)
    return cert, key


def test_a_self_signed_server_is_refused_before_any_request(
    mode: Mode, self_signed: tuple[Path, Path]
) -> None:
    cert, key = self_signed
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with FakeKlaviyo(api_key=SECRET_KEY, ssl_context=context) as server:
        server.add_job("item-update", job_id="J")
        assert server.base_url.startswith("https://127.0.0.1:")
        https = options(server.base_url, SECRET_KEY, max_retries=0)
        with pytest.raises(TransportError, match="ConnectError") as caught:
            call(mode, https, "get_item_update_job", "J")
        assert server.request_log == []  # the key never went out: the handshake failed first
        # The fake does speak TLS: a client trusting its certificate gets the job.
        trusting = ssl.create_default_context(cafile=str(cert))
        response = httpx.get(
            server.url("item-update", "J"), headers=server.headers(), verify=trusting
        )
        assert response.status_code == 200
    # Why it failed is kept: the httpx error, with the TLS detail, is the cause.
    cause = caught.value.__cause__
    assert isinstance(cause, httpx.ConnectError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(cause)


def test_ssl_cert_file_is_honoured_though_clients_share_one_tls_context(
    mode: Mode, self_signed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients share a TLS context (loading the CA bundle costs ~20 ms a client), yet one
    built after SSL_CERT_FILE changes trusts what it names, as httpx's own clients do."""
    cert, key = self_signed
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with FakeKlaviyo(api_key=SECRET_KEY, ssl_context=context) as server:
        server.add_job("item-update", job_id="J")
        https = options(server.base_url, SECRET_KEY, max_retries=0)
        with pytest.raises(TransportError, match="ConnectError"):
            call(mode, https, "get_item_update_job", "J")
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        assert call(mode, https, "get_item_update_job", "J").id == "J"
        made = tls_contexts_made(monkeypatch)
        clients = [CatalogJobs(SECRET_KEY), CatalogJobs(SECRET_KEY)]
        assert len(made) == 1  # one for both
        for client in clients:
            client.close()
        monkeypatch.delenv("SSL_CERT_FILE")
        with pytest.raises(TransportError, match="ConnectError"):
            call(mode, https, "get_item_update_job", "J")
    assert len(server.request_log) == 1  # only the trusting client's request got through


# --- OAuth access tokens: kept out of everything the key is kept out of ------------------------

SECRET_TOKEN = "kat_hardening_t0ken_51d2e3f4a5b6c7d8e9f0a1b2"
FRESH_TOKEN = "kat_hardening_t0ken_fresh_0a9b8c7d6e5f4a3b2c1"


def reprs_within(client: object) -> Iterator[str]:
    """What a debugger or an error tracker could show of `client`: the repr of its attributes,
    and of theirs, an attrs class's fields included (those kept out of its repr too)."""
    for value in vars(client).values():
        yield repr(value)
        if attrs.has(type(value)):
            yield from (repr(field) for field in attrs.asdict(value, recurse=False).values())


def assert_no_token(*texts: str) -> None:
    for text in texts:
        for token in (SECRET_TOKEN, FRESH_TOKEN):
            assert token not in text
            assert token[:20] not in text  # not even a prefix


@pytest.fixture
def token_fake() -> Iterator[FakeKlaviyo]:
    with FakeKlaviyo(api_key=SECRET_KEY, access_tokens=[SECRET_TOKEN, FRESH_TOKEN]) as server:
        yield server
    assert server.internal_errors == []


def token_opts(fake: FakeKlaviyo, **overrides: Any) -> dict[str, Any]:
    base = options(fake.base_url, SECRET_KEY, **{"max_retries": 1, **overrides})
    del base["api_key"]
    return {"access_token": SECRET_TOKEN, **base, **overrides}


@pytest.mark.parametrize("client_class", [CatalogJobs, AsyncCatalogJobs])
@pytest.mark.parametrize("source", ["fixed", "function"])
def test_repr_and_attributes_of_a_token_client_never_show_the_token(
    client_class: type[CatalogJobs] | type[AsyncCatalogJobs], source: str
) -> None:
    token: Any = SECRET_TOKEN if source == "fixed" else (lambda: SECRET_TOKEN)
    client = client_class(access_token=token, base_url="https://a.klaviyo.com")
    try:
        assert_no_token(repr(client), str(client), *reprs_within(client))
        assert SECRET_TOKEN not in client.account
    finally:
        if isinstance(client, CatalogJobs):
            client.close()
        else:
            run_async(client.aclose())


def test_no_log_record_or_url_carries_the_token(
    mode: Mode, token_fake: FakeKlaviyo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("klaviyo_catalog", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    job_id = token_fake.add_job("item-update", items=2)
    for fault in (Fault.status(503), Fault.rate_limited(0), Fault.reset()):
        token_fake.inject(fault)
    call(mode, token_opts(token_fake, max_retries=4), "get_item_update_job", job_id)
    # A token that expires, then a function that hands out the fresh one.
    tokens = iter([SECRET_TOKEN, FRESH_TOKEN])
    token_fake.revoke_access_token(SECRET_TOKEN)
    refreshing = token_opts(token_fake, access_token=lambda: next(tokens))
    call(mode, refreshing, "get_item_update_job", job_id)
    token_fake.revoke_access_token(FRESH_TOKEN)
    expired = token_opts(token_fake, access_token=FRESH_TOKEN)
    with pytest.raises(AuthenticationError):
        call(mode, expired, "list_item_create_jobs")
    with pytest.raises(AuthenticationError):  # httpx logs the requests of an app's client
        call(mode, expired, "list_item_create_jobs", http=app_http_client)
    names = {record.name.split(".")[0] for record in caplog.records}
    assert {"klaviyo_catalog", "httpx", "httpcore"} <= names
    for record in caplog.records:
        assert_no_token(record.getMessage(), repr(record.args), str(record.exc_text))
    assert_no_token(caplog.text)
    for sent in token_fake.request_log:  # never in a URL
        assert_no_token(sent.path, repr(sent.query))


def test_no_error_message_or_traceback_carries_the_token(
    mode: Mode, token_fake: FakeKlaviyo
) -> None:
    job_id = token_fake.add_job("item-update", status="processing")

    def leaky() -> str:
        raise RuntimeError(f"could not refresh {SECRET_TOKEN}")

    def expired() -> Any:
        token_fake.revoke_access_token(FRESH_TOKEN)
        tokens = iter([FRESH_TOKEN, FRESH_TOKEN])
        return call(
            mode,
            token_opts(token_fake, access_token=lambda: next(tokens)),
            "get_item_update_job",
            job_id,
        )

    def fails_on_refresh() -> Any:
        calls = iter([FRESH_TOKEN])

        def provider() -> str:
            try:
                return next(calls)
            except StopIteration:
                return leaky()

        token_fake.revoke_access_token(FRESH_TOKEN)  # so the first request gets a 401
        failing = token_opts(token_fake, access_token=provider)
        return call(mode, failing, "get_item_update_job", job_id)

    def faulted(fault: Fault) -> Callable[[], Any]:
        def go() -> Any:
            token_fake.inject(fault, times=5)
            return call(mode, token_opts(token_fake, timeout=0.2), "get_item_update_job", job_id)

        return go

    cases: list[tuple[type[KlaviyoError], Callable[[], Any]]] = [
        (ConfigurationError, lambda: CatalogJobs(access_token=leaky)),
        (ConfigurationError, lambda: CatalogJobs(SECRET_KEY, access_token=SECRET_TOKEN)),
        (ConfigurationError, lambda: CatalogJobs(access_token=SECRET_TOKEN + "\n")),
        (AuthenticationError, expired),
        (ConfigurationError, fails_on_refresh),
        (RateLimitError, faulted(Fault.rate_limited(0))),
        (ServerError, faulted(Fault.status(503))),
        (TransportError, faulted(Fault.reset())),
        (InvalidResponseError, faulted(Fault.truncated())),
    ]
    for error_class, action in cases:
        token_fake.clear_faults()
        token_fake.add_access_token(FRESH_TOKEN)
        with pytest.raises(error_class) as caught:
            action()
        error = caught.value
        texts = [
            str(error),
            repr(error),
            repr(vars(error)),
            "".join(traceback.format_exception(error)),
        ]
        if not isinstance(error, ConfigurationError):
            texts += library_locals(error)  # the constructor holds it, as its argument
        assert_no_token(*texts)
        for token in (SECRET_TOKEN, FRESH_TOKEN):
            assert key_paths(error, token[:20]) == [], type(error)
            assert token[:20].encode() not in pickle.dumps(error)
