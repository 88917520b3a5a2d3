"""Library failures the harness found and the library has not fixed yet: each one pinned, none hidden.

* :data:`KNOWN`: a case whose id matches one of these runs as ``xfail(strict=True)``. The day the
  library is fixed it passes, the strict xfail fails, and the entry must go. Ids are
  ``<provider>-<mode>:<case>`` (``-setup`` for the constructor table); an entry may start with
  ``httpx/`` or ``aiohttp/`` to pin one engine.
* :data:`KNOWN_PROBLEMS`: the random tier cannot pin an example, so a problem that is an instance of a
  finding listed in :data:`KNOWN` (same reason) is noted there instead of failing the run; any other
  problem fails it.
* :data:`PINNED_LEAKS`: a key leak with one root cause that shows in many cases is asserted by one
  dedicated strict-xfail test; the other cases leave it to that test (``judge(every_leak=False)``).

Each reason is one line; the harness's report lists a minimal reproduction for each.
"""

from __future__ import annotations

import re

import pytest

__all__ = ["KNOWN", "KNOWN_PROBLEMS", "PINNED_LEAKS", "known_problem", "xfail_marks"]

_T = r"(?:-fixture:\w+)?"  # a template recorded in tests/fixtures, e.g. "mistral-chat-fixture:chat"

# -- answers -------------------------------------------------------------------------------------------------
EMPTY_CHAT = ("openai dialect, non-streamed: an answer with no text, no tool call and no finish_reason is an empty "
              "success ('' with finish 'stop' made up); its stream, and every other provider, raise ProtocolError")
INDEX_NULL = "openai dialect embeddings: an index of null raises a raw TypeError (sorted() on int and None)"
INDEX_MISSING = ("openai dialect embeddings: an item without index is sorted as index 0; when another item has "
                 "index 0 the vectors can come back swapped (each for the other input)")
EMPTY_VECTOR = ("openai dialect embeddings: an empty vector ([] or \"\" in base64) is returned as a success "
                "(Ollama and MegaChat refuse one)")
COST_OVERFLOW = ("a token count too big for a float (a 400-digit integer) passes the shape check; "
                 "estimate_cost(provider, resp.model, resp.usage) then raises a raw OverflowError")
NDJSON_BATCH = ("NDJSON framing decodes every line of one read before the decoder sees any: a bad line drops the "
                "good lines read with it, so what reaches the caller depends on how the bytes were split into reads")
# -- HTTP and statuses ---------------------------------------------------------------------------------------
STREAM_LEAK = ("a stream refused for an unaccepted Content-Encoding never closes its response (http/sender.py "
               "stream_chunks builds the decoder before its try/finally): the connection stays taken")
BAD_LOCATION = "a 3xx whose Location is not a URL raises a raw httpx.InvalidURL (http/sender.py error_from_response)"
REDIRECT_ID = "a 3xx error's request_id is not scrubbed: a key echoed in the request-id header is in str(err)"
CODE_UNSCRUBBED = "err.code is not scrubbed: a provider error type/code echoing the key is in repr(err) and err.code"
AIOHTTP_CHAIN = ("aiohttp engine: the typed error's exception chain holds aiohttp's ClientResponseError, whose repr "
                 "shows the request headers, Authorization included")
HTTPCORE_LOG = ("httpx engine: httpcore's DEBUG trace logs response heads verbatim; a request-id header echoing the "
                "key is logged unmasked")
# -- caller input --------------------------------------------------------------------------------------------
TOOL_SURROGATE = "a lone surrogate in an assistant tool call's name or a tool_call_id raises a raw UnicodeEncodeError"
TOOL_CALLS_INT = "an assistant message with tool_calls=5 raises a raw TypeError"
IMAGE_URL = "an image data URL without a media type, or not base64, is sent instead of refused"
SETUP_POOL = "pool=5 raises a raw AttributeError ('int' object has no attribute 'httpx_limits')"
SETUP_HEADERS = ("headers given as a list of pairs skip the header checks and are sent; as a str they raise a raw "
                 "ValueError")
SETUP_HEADERS_CLAUDE = "claude: headers not a dict of str (list, str, int names) raise a raw AttributeError/TypeError"
SETUP_FLAGS = "boolean settings (allow_insecure_http, follow_redirects, log_payloads) accept any truthy value ('yes')"
SETUP_DEFAULT_MODEL = "default_model=5 is accepted and sent as the model (a call's model=5 is refused)"
SETUP_TIMEOUT = "timeout=10**30 is accepted by the constructor (a call's timeout= of the same is refused)"
SETUP_TRANSPORT = "transport=5 is accepted (the engine silently falls back to the default)"

#: (regular expression over the case id, reason); ``fullmatch``, with or without an engine prefix.
KNOWN: list[tuple[str, str]] = [
    # -- answers (test_fuzz_answers.py; the parse does not depend on the engine)
    (r"(openai|mistral)-chat:empty-without-reason", EMPTY_CHAT),
    (rf"(openai|mistral)-embeddings{_T}:data\.\d+\.index:null", INDEX_NULL),
    (rf"(openai|mistral)-embeddings{_T}:data\.\d+\.embedding:empty", EMPTY_VECTOR),
    (r"mistral-embeddings-fixture:embeddings:data\.0\.index:del", INDEX_MISSING),  # its data lists index 1 first
    (rf"(openai-(chat|stream)|mistral-(chat|stream|embeddings)){_T}:(\d+\.)?usage\.(prompt|completion)_tokens:int400",
     COST_OVERFLOW),
    (rf"claude-chat{_T}:usage\.(input|output|cache_creation_input|cache_read_input)_tokens:int400", COST_OVERFLOW),
    # a stream's output count comes from message_delta: message_start's is overwritten
    (rf"claude-stream{_T}:(0\.message\.usage\.(input|cache_creation_input|cache_read_input)|\d+\.usage\.output)"
     r"_tokens:int400", COST_OVERFLOW),
    (rf"ollama-(chat|stream){_T}:(\d+\.)?(prompt_eval|eval)_count:int400", COST_OVERFLOW),
    (rf"ollama-embeddings{_T}:prompt_eval_count:int400", COST_OVERFLOW),
    (r"ollama-stream:bad-line-in-one-read", NDJSON_BATCH),
    # -- HTTP and statuses (test_fuzz_http.py, test_fuzz_status.py); aiohttp gives it back when collected
    (r"httpx/ollama-stream:unaccepted-encoding-x-snappy", STREAM_LEAK),
    (r"\w+-(chat|stream):301-bad-location:\w+", BAD_LOCATION),
    (r"\w+-(chat|stream):30[27]-[\w-]+:\w+", REDIRECT_ID),
    (r"\w+-(chat|stream):401-key-everywhere:\w+", CODE_UNSCRUBBED),
    (r"aiohttp/openai-chat:error-chain-[\w-]+", AIOHTTP_CHAIN),
    (r"httpx/openai-chat:echo-key-in-headers-\w+", HTTPCORE_LOG),
    # -- caller input (test_caller_input.py)
    (r"\w+-(chat|stream):tool-call-name-surrogate", TOOL_SURROGATE),
    (r"(openai|mistral|claude|sample)-(chat|stream):tool-id-surrogate", TOOL_SURROGATE),
    (r"\w+-(chat|stream):tool-calls-int", TOOL_CALLS_INT),
    (r"(openai|mistral|ollama|sample)-(chat|stream):image-(no-media-type|not-base64-flag)", IMAGE_URL),
    (r"\w+-setup:pool-int", SETUP_POOL),
    (r"(openai|mistral|ollama|sample)-setup:headers-(list|str)", SETUP_HEADERS),
    (r"claude-setup:headers-(list|str|int-name)", SETUP_HEADERS_CLAUDE),
    (r"\w+-setup:(allow_insecure_http|follow_redirects|log_payloads)-str", SETUP_FLAGS),
    (r"\w+-setup:default_model-int", SETUP_DEFAULT_MODEL),
    (r"\w+-setup:timeout-huge", SETUP_TIMEOUT),
    (r"\w+-setup:transport-int", SETUP_TRANSPORT),
]
_KNOWN = [(re.compile(pattern), reason) for pattern, reason in KNOWN]

#: (pattern over "<case id>: <judge() problem>", reason): the random tier's view of the same findings. A case
#: id names the mutations ("openai-chat:null@choices.0.message.content+cut120"), so each pattern asks for the
#: mutation of its finding too.
_STEP = r"(?=\+|:)"  # after a mutation's path: the next mutation, or the end of the case id
_NULL = r"(null|delete|replace)"  # a random replacement may be null (or an empty list, an object without text)
KNOWN_PROBLEMS: list[tuple[re.Pattern[str], str]] = [(re.compile(pattern), reason) for pattern, reason in [
    (rf"^(openai|mistral)-chat{_T}:.*{_NULL}@choices\.0(\.message(\.content)?|\.finish_reason)?{_STEP}.*: success "
     r"with ''; allowed: 'an error \(the answer carries no text, no tool call and no documented", EMPTY_CHAT),
    (rf"^(openai|mistral)-embeddings{_T}:.*{_NULL}@data\.\d+\.index{_STEP}.*: raw exception builtins\.TypeError: "
     r"'<' not supported between instances of '(int|NoneType)' and '(int|NoneType)'", INDEX_NULL),
    (rf"^(openai|mistral)-embeddings{_T}:.*: success with .*\[\].*\((vector is not a non-empty list|bad base64 vector "
     r"length)\)", EMPTY_VECTOR),
    (r": estimate_cost raised OverflowError\('int too large to convert to float'\)", COST_OVERFLOW),
    (rf"^(openai|mistral)-embeddings{_T}:.*delete@data\.\d+\.index{_STEP}.*: success with \[\[.*; allowed: \[\[\[",
     INDEX_MISSING),
]]

#: (where-prefix, text-prefix) of key leaks pinned by their own test (see the module docstring).
PINNED_LEAKS: tuple[tuple[str, str], ...] = (
    ("log record", "httpcore.http11: receive_response_headers.complete"),  # HTTPCORE_LOG
    ("repr(err.__cause__/__context__", "ClientResponseError(RequestInfo("),  # AIOHTTP_CHAIN
)


def xfail_marks(case_id: str, engine: str | None = None) -> list[pytest.MarkDecorator]:
    """``xfail(strict=True)`` if the case (on ``engine``, when given) is a known library failure."""
    names = [case_id] + ([f"{engine}/{case_id}"] if engine else [])
    for pattern, reason in _KNOWN:
        if any(pattern.fullmatch(name) for name in names):
            return [pytest.mark.xfail(strict=True, reason=f"library: {reason}")]
    return []


def known_problem(problem: str) -> str | None:
    """The finding ``problem`` ("<case id>: <judge() problem>") is an instance of, if a known one."""
    return next((reason for pattern, reason in KNOWN_PROBLEMS if pattern.search(problem)), None)
