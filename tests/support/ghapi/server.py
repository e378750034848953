"""A loopback stand-in for api.github.com that checks every request against GitHub's OpenAPI description.

Two threaded HTTP servers on free ports:
- the API (127.0.0.1, optionally under a GHES-style prefix such as /api/v3): issue comments,
  workflow runs and artifacts, answering with bodies built from the description's own examples;
- the artifact storage host (127.0.0.2 when that loopback address can be bound, else 127.0.0.1
  on another port), where artifact zip downloads are redirected with a pre-signed URL.

Every API request is validated with openapi-core (method, path, path/query parameters, JSON
body) and its query names are checked against the operation's declared parameters; every
answer with a status the description declares is validated against the response schema. Any
mismatch answers 400 (for requests) and is recorded in `violations`, which the pytest fixture
asserts is empty. The storage host records a violation when it receives an Authorization
header: the token must never leave GitHub.

The token is an installation token like GITHUB_TOKEN by default: its comments are written by
`bot_login` and `GET /user` answers 403, as GitHub does. `token_user` makes it a user's token
(a PAT): `GET /user` names that user, who writes its comments.

Faults are scripted per test: `add_fault` (any status/headers/message, N times), `forbid_writes`
(a read-only token, as on fork PRs) and `rendezvous` (hold N matching requests until all
arrived, to force a race deterministically).
"""

from __future__ import annotations

import json
import secrets
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from .spec import GitHubSpec, Operation

# Looks like a GitHub App installation token; distinctive so a leak is easy to find in any text.
TEST_TOKEN = "ghs_perfgateTESTtoken0123456789abcdefXYZ"
SPEC_HOST_URL = "https://api.github.com"  # the description's server; requests are matched against it
DOCS_URL = "https://docs.github.com/rest"
EPOCH = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
Reply = tuple[int, dict[str, str], bytes]  # status, headers, body


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RecordedRequest:
    host: str  # "api" or "storage"
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    body: bytes


@dataclass
class Fault:
    """Answer matching requests with `status` instead of serving them (`times=None`: always)."""

    status: int
    method: str | None = None
    path_contains: str | None = None
    times: int | None = 1
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "Server Error"
    host: str = "api"
    serve_anyway: bool = False  # apply the request first (GitHub did the work, the answer got lost)
    used: int = 0

    def matches(self, host: str, method: str, path: str) -> bool:
        return (self.host == host and (self.times is None or self.used < self.times)
                and (self.method is None or self.method == method)
                and (self.path_contains is None or self.path_contains in path))


@dataclass
class Comment:
    id: int
    repo: str
    issue: int
    body: str
    user: str
    created_at: datetime
    updated_at: datetime


@dataclass
class Pull:
    repo: str  # the base repository
    number: int
    head_sha: str
    head_repo: str | None  # None: the fork was deleted
    base_ref: str


@dataclass
class Run:
    id: int
    repo: str
    workflow_file: str
    workflow_id: int
    branch: str
    head_sha: str
    event: str
    status: str
    conclusion: str | None
    head_repo: str
    created_at: datetime


@dataclass
class Artifact:
    id: int
    repo: str
    run_id: int
    name: str
    data: bytes
    expired: bool
    created_at: datetime
    expires_at: datetime
    signature: str = field(default_factory=lambda: secrets.token_hex(16))


@dataclass
class _Rendezvous:
    method: str
    path_contains: str
    barrier: threading.Barrier
    remaining: int


class _Request:
    """openapi-core's Request protocol for one HTTP request."""

    def __init__(self, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str],
                 body: bytes, content_type: str):
        self.host_url = SPEC_HOST_URL
        self.path = path
        self.method = method.lower()
        self.body = body or None
        self.content_type = content_type
        self.parameters = RequestParameters(query=ImmutableMultiDict(query), header=Headers(headers))


class _Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status_code = status
        self.headers = Headers(headers)
        self.data = body
        self.content_type = headers.get("Content-Type", "") if body else ""


class FakeGitHub:
    def __init__(self, spec: GitHubSpec, *, token: str, prefix: str = "",
                 bot_login: str = "github-actions[bot]", token_user: str | None = None):
        self.spec = spec
        self.token = token
        self.prefix = prefix.rstrip("/")
        self.bot_login = bot_login
        self.token_user = token_user
        self.violations: list[str] = []
        self.requests: list[RecordedRequest] = []
        self.responses_checked = 0
        self._faults: list[Fault] = []
        self._rendezvous: list[_Rendezvous] = []
        self._forbid_writes: str | None = None
        self._lock = threading.RLock()
        self._ids = iter(range(1001, 10**9))
        self.comments: dict[int, Comment] = {}
        self.pulls: dict[tuple[str, int], Pull] = {}
        self.runs: dict[int, Run] = {}
        self.artifacts: dict[int, Artifact] = {}
        self._api = self._server("127.0.0.1", "api")
        self._storage = self._server(_storage_host(), "storage")
        self._threads: list[threading.Thread] = []

    # -- lifecycle ------------------------------------------------------------------------
    def _server(self, host: str, role: str) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer((host, 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        server.role = role  # type: ignore[attr-defined]
        return server

    def start(self) -> FakeGitHub:
        for server in (self._api, self._storage):
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in (self._api, self._storage):
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        host, port = self._api.server_address[:2]
        return f"http://{host}:{port}{self.prefix}"

    @property
    def storage_url(self) -> str:
        host, port = self._storage.server_address[:2]
        return f"http://{host}:{port}"

    # -- scripting ------------------------------------------------------------------------
    def add_fault(self, status: int, *, method: str | None = None, path_contains: str | None = None,
                  times: int | None = 1, headers: dict[str, str] | None = None,
                  message: str = "Server Error", host: str = "api", serve_anyway: bool = False) -> Fault:
        fault = Fault(status, method, path_contains, times, dict(headers or {}), message, host, serve_anyway)
        with self._lock:
            self._faults.append(fault)
        return fault

    def forbid_writes(self, message: str = "Resource not accessible by integration") -> None:
        """Every POST/PATCH/DELETE answers 403, like a read-only GITHUB_TOKEN on a fork PR."""
        self._forbid_writes = message

    def rendezvous(self, method: str, path_contains: str, parties: int, timeout_s: float = 10.0) -> None:
        """Hold the first `parties` matching requests until all of them have arrived."""
        with self._lock:
            barrier = threading.Barrier(parties, timeout=timeout_s)
            self._rendezvous.append(_Rendezvous(method, path_contains, barrier, parties))

    def take_violations(self) -> list[str]:
        with self._lock:
            taken, self.violations = self.violations, []
        return taken

    def api_requests(self, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.host == "api" and (method is None or r.method == method)]

    def storage_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.host == "storage"]

    # -- seeding and views --------------------------------------------------------------------
    def add_comment(self, repo: str, issue: int, body: str, *, user: str = "octocat") -> Comment:
        with self._lock:
            comment_id = next(self._ids)
            moment = EPOCH + timedelta(seconds=comment_id)
            comment = Comment(comment_id, repo, issue, body, user, moment, moment)
            self.comments[comment_id] = comment
        return comment

    @property
    def writer(self) -> str:
        """Who the token writes as."""
        return self.token_user or self.bot_login

    def add_pull(self, repo: str, number: int, *, head_sha: str, head_repo: str | None = None,
                 base_ref: str = "main", fork_deleted: bool = False) -> Pull:
        with self._lock:
            pull = Pull(repo, number, head_sha, None if fork_deleted else head_repo or repo, base_ref)
            self.pulls[(repo, number)] = pull
        return pull

    def issue_comments(self, repo: str, issue: int) -> list[Comment]:
        with self._lock:
            return sorted((c for c in self.comments.values() if c.repo == repo and c.issue == issue),
                          key=lambda c: c.id)

    def add_run(self, repo: str, *, branch: str = "main", workflow: str = "perfgate.yml",
                conclusion: str | None = "success", status: str = "completed", event: str = "push",
                head_repo: str | None = None, head_sha: str | None = None) -> Run:
        with self._lock:
            run_id = next(self._ids)
            run = Run(run_id, repo, workflow, 4000 + sum(map(ord, workflow)), branch,
                      head_sha or f"{run_id:040x}", event, status, conclusion, head_repo or repo,
                      EPOCH + timedelta(seconds=run_id))
            self.runs[run_id] = run
        return run

    def add_artifact(self, run: Run, name: str, data: bytes, *, expired: bool = False) -> Artifact:
        with self._lock:
            artifact_id = next(self._ids)
            created = run.created_at + timedelta(minutes=5)
            expires = created - timedelta(days=1) if expired else created + timedelta(days=90)
            artifact = Artifact(artifact_id, run.repo, run.id, name, data, expired, created, expires)
            self.artifacts[artifact_id] = artifact
        return artifact

    # -- request handling -----------------------------------------------------------------
    def handle(self, role: str, method: str, raw_path: str, headers: dict[str, str],
               body: bytes) -> Reply:
        split = urlsplit(raw_path)
        query = parse_qsl(split.query, keep_blank_values=True)
        with self._lock:
            self.requests.append(RecordedRequest(role, method, split.path, tuple(query), headers, body))
        if role == "storage":
            return self._handle_storage(method, split.path, query, headers)
        return self._handle_api(method, split.path, query, headers, body)

    def _violation(self, text: str) -> None:
        with self._lock:
            self.violations.append(text)

    def _handle_api(self, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str],
                    body: bytes) -> Reply:
        where = f"{method} {path}"
        if not path.startswith(self.prefix + "/"):
            self._violation(f"{where}: outside the API prefix {self.prefix!r}")
            return _error(404, "Not Found")
        spec_path = path[len(self.prefix):]
        op, params, path_known = self.spec.match(method, spec_path)
        if op is None:
            self._violation(f"{where}: {'method not allowed' if path_known else 'no such path'} in GitHub's "
                            f"OpenAPI description (or not served by the fake)")
            return _error(405 if path_known else 404, "Not Found")
        problems = self._request_problems(op, method, spec_path, query, headers, body)
        if problems:
            self._violation(f"{where} ({op.operation_id}): {problems}")
            return _error(400, f"Request does not match GitHub's OpenAPI description: {problems}")
        if headers.get("authorization") not in (f"token {self.token}", f"Bearer {self.token}"):
            if "authorization" not in headers:
                self._violation(f"{where}: no Authorization header")
            return _error(401, "Bad credentials")
        self._meet(method, spec_path)
        status, out_headers, payload = self._fault_or_serve(op, method, spec_path, params, query, body)
        self._check_response(op, method, spec_path, query, headers, body, status, out_headers, payload)
        return status, out_headers, payload

    def _request_problems(self, op: Operation, method: str, path: str, query: list[tuple[str, str]],
                          headers: dict[str, str], body: bytes) -> str:
        unknown = sorted({name for name, _ in query} - op.query_names)
        if unknown:
            return f"undeclared query parameters {unknown}"
        request = _Request(method, path, query, headers, body, headers.get("content-type", ""))
        try:
            self.spec.openapi.validate_request(request)
        except Exception as exc:  # openapi-core raises many types; all mean "does not validate"
            return _explain(exc)
        return ""

    def _meet(self, method: str, path: str) -> None:
        with self._lock:
            meeting = next((r for r in self._rendezvous if r.remaining > 0 and r.method == method
                            and r.path_contains in path), None)
            if meeting is not None:
                meeting.remaining -= 1
        if meeting is not None:
            meeting.barrier.wait()

    def _fault_or_serve(self, op: Operation, method: str, path: str, params: dict[str, str],
                        query: list[tuple[str, str]], body: bytes) -> Reply:
        with self._lock:
            fault = next((f for f in self._faults if f.matches("api", method, path)), None)
            if fault is not None:
                fault.used += 1
        if fault is not None:
            if fault.serve_anyway:
                self._serve(op, method, path, params, query, body)
            status, headers, payload = _error(fault.status, fault.message)
            headers.update(fault.headers)
            return status, headers, payload
        if self._forbid_writes and method in ("POST", "PATCH", "PUT", "DELETE"):
            return _error(403, self._forbid_writes)
        return self._serve(op, method, path, params, query, body)

    def _serve(self, op: Operation, method: str, path: str, params: dict[str, str],
               query: list[tuple[str, str]], body: bytes) -> Reply:
        handler = self._handlers().get(op.operation_id)
        if handler is None:
            self._violation(f"{method} {path}: {op.operation_id} is valid but the fake does not serve it")
            return _error(501, "Not implemented by the fake")
        with self._lock:
            return handler(params, dict(query), body)

    def _check_response(self, op: Operation, method: str, path: str, query: list[tuple[str, str]],
                        headers: dict[str, str], body: bytes, status: int, out_headers: dict[str, str],
                        payload: bytes) -> None:
        if str(status) not in op.statuses:
            return  # faults GitHub sends without documenting them per operation (5xx, rate limits)
        request = _Request(method, path, query, headers, body, headers.get("content-type", ""))
        try:
            self.spec.openapi.validate_response(request, _Response(status, out_headers, payload))
        except Exception as exc:
            self._violation(f"response {status} to {method} {path} ({op.operation_id}) does not validate: "
                            f"{_explain(exc)}")
        with self._lock:
            self.responses_checked += 1

    def _handle_storage(self, method: str, path: str, query: list[tuple[str, str]],
                        headers: dict[str, str]) -> Reply:
        if "authorization" in headers:
            self._violation(f"storage host received an Authorization header on {method} {path}")
            return _error(400, "Authorization header not allowed with a pre-signed URL")
        with self._lock:
            fault = next((f for f in self._faults if f.matches("storage", method, path)), None)
            if fault is not None:
                fault.used += 1
        if fault is not None:
            return _error(fault.status, fault.message)
        name = path.rsplit("/", 1)[-1].removesuffix(".zip")
        artifact = self.artifacts.get(int(name)) if name.isdigit() else None
        if method != "GET" or artifact is None or dict(query).get("sig") != artifact.signature:
            return _error(403, "AuthenticationFailed")
        return 200, {"Content-Type": "application/zip"}, artifact.data

    # -- operations (called with the lock held) -------------------------------------------
    def _handlers(self) -> dict[str, Callable[[dict[str, str], dict[str, str], bytes],
                                              Reply]]:
        return {
            "issues/list-comments": self._list_comments,
            "issues/create-comment": self._create_comment,
            "issues/get-comment": self._get_comment,
            "issues/update-comment": self._update_comment,
            "issues/delete-comment": self._delete_comment,
            "actions/list-workflow-runs-for-repo": self._list_runs,
            "actions/list-workflow-runs": self._list_runs,
            "actions/get-workflow-run": self._get_run,
            "actions/list-workflow-run-artifacts": self._list_artifacts,
            "actions/download-artifact": self._download_artifact,
            "pulls/get": self._get_pull,
            "users/get-authenticated": self._get_user,
        }

    def _list_comments(self, p: dict[str, str], q: dict[str, str], _: bytes) -> Reply:
        repo = f"{p['owner']}/{p['repo']}"
        items = [self._comment_json(c) for c in self.issue_comments(repo, int(p["issue_number"]))]
        page, links = self._paginate(items, q, f"/repos/{repo}/issues/{p['issue_number']}/comments")
        return _json(200, page, links)

    def _create_comment(self, p: dict[str, str], _: dict[str, str], body: bytes) -> Reply:
        repo = f"{p['owner']}/{p['repo']}"
        text = json.loads(body)["body"]
        comment = self.add_comment(repo, int(p["issue_number"]), text, user=self.writer)
        data = self._comment_json(comment)
        return _json(201, data, {"Location": data["url"]})

    def _get_comment(self, p: dict[str, str], _: dict[str, str], __: bytes) -> Reply:
        comment = self._find_comment(p)
        return _json(200, self._comment_json(comment)) if comment else _error(404, "Not Found")

    def _update_comment(self, p: dict[str, str], _: dict[str, str], body: bytes) -> Reply:
        comment = self._find_comment(p)
        if comment is None:
            return _error(404, "Not Found")
        comment.body = json.loads(body)["body"]
        comment.updated_at = EPOCH + timedelta(seconds=next(self._ids))
        return _json(200, self._comment_json(comment))

    def _delete_comment(self, p: dict[str, str], _: dict[str, str], __: bytes) -> Reply:
        comment = self._find_comment(p)
        if comment is None:
            return _error(404, "Not Found")
        del self.comments[comment.id]
        return 204, {}, b""

    def _find_comment(self, p: dict[str, str]) -> Comment | None:
        comment = self.comments.get(int(p["comment_id"]))
        return comment if comment and comment.repo == f"{p['owner']}/{p['repo']}" else None

    def _get_pull(self, p: dict[str, str], _: dict[str, str], __: bytes) -> Reply:
        pull = self.pulls.get((f"{p['owner']}/{p['repo']}", int(p["pull_number"])))
        return _json(200, self._pull_json(pull)) if pull else _error(404, "Not Found")

    def _get_user(self, _: dict[str, str], __: dict[str, str], ___: bytes) -> Reply:
        if self.token_user is None:
            return _error(403, "Resource not accessible by integration")
        data = self.spec.example("private-user-response-with-public-and-private-profile-information")
        data.update(login=self.token_user, id=4242, node_id="U_fake4242", user_view_type="private",
                    url=f"{self.base_url}/users/{self.token_user}",
                    html_url=f"https://github.com/{self.token_user}")
        return _json(200, data)

    def _list_runs(self, p: dict[str, str], q: dict[str, str], _: bytes) -> Reply:
        repo = f"{p['owner']}/{p['repo']}"
        runs = [r for r in self.runs.values() if r.repo == repo and _run_matches(r, q)]
        if "workflow_id" in p:
            runs = [r for r in runs if p["workflow_id"] in (str(r.workflow_id), r.workflow_file)]
        runs.sort(key=lambda r: r.created_at, reverse=True)
        suffix = f"/actions/workflows/{p['workflow_id']}/runs" if "workflow_id" in p else "/actions/runs"
        page, links = self._paginate([self._run_json(r) for r in runs], q, f"/repos/{repo}{suffix}")
        return _json(200, {"total_count": len(runs), "workflow_runs": page}, links)

    def _get_run(self, p: dict[str, str], _: dict[str, str], __: bytes) -> Reply:
        run = self.runs.get(int(p["run_id"]))
        if run is None or run.repo != f"{p['owner']}/{p['repo']}":
            return _error(404, "Not Found")
        return _json(200, self._run_json(run, self.spec.example("workflow-run")))

    def _list_artifacts(self, p: dict[str, str], q: dict[str, str], _: bytes) -> Reply:
        repo = f"{p['owner']}/{p['repo']}"
        found = sorted((a for a in self.artifacts.values() if a.repo == repo and a.run_id == int(p["run_id"])
                        and ("name" not in q or a.name == q["name"])),
                       key=lambda a: a.id, reverse=q.get("direction", "desc") == "desc")
        page, links = self._paginate([self._artifact_json(a) for a in found], q,
                                     f"/repos/{repo}/actions/runs/{p['run_id']}/artifacts")
        return _json(200, {"total_count": len(found), "artifacts": page}, links)

    def _download_artifact(self, p: dict[str, str], _: dict[str, str], __: bytes) -> Reply:
        artifact = self.artifacts.get(int(p["artifact_id"])) if p["artifact_id"].isdigit() else None
        if artifact is None or artifact.repo != f"{p['owner']}/{p['repo']}" or p["archive_format"] != "zip":
            return _error(404, "Not Found")
        if artifact.expired:
            return _error(410, "Artifact has expired")
        location = f"{self.storage_url}/blobs/{artifact.id}.zip?sig={artifact.signature}&se=60"
        return 302, {"Location": location}, b""

    # -- JSON shaped after the description's examples ---------------------------------------
    def _comment_json(self, c: Comment) -> dict[str, Any]:
        data = self.spec.example("issue-comment")
        data.update(
            id=c.id,
            node_id=f"IC_fake{c.id}",
            url=f"{self.base_url}/repos/{c.repo}/issues/comments/{c.id}",
            html_url=f"https://github.com/{c.repo}/pull/{c.issue}#issuecomment-{c.id}",
            body=c.body,
            created_at=_iso(c.created_at),
            updated_at=_iso(c.updated_at),
            issue_url=f"{self.base_url}/repos/{c.repo}/issues/{c.issue}",
            author_association="NONE" if c.user == self.bot_login else "CONTRIBUTOR",
        )
        data["user"].update(login=c.user, type="Bot" if c.user == self.bot_login else "User")
        return data

    def _pull_json(self, pull: Pull) -> dict[str, Any]:
        data = self.spec.example("pull-request")
        api = f"{self.base_url}/repos/{pull.repo}"
        data.update(number=pull.number, url=f"{api}/pulls/{pull.number}",
                    html_url=f"https://github.com/{pull.repo}/pull/{pull.number}",
                    issue_url=f"{api}/issues/{pull.number}")
        data["head"].update(sha=pull.head_sha, label=f"{(pull.head_repo or 'unknown/x').split('/')[0]}:feature")
        if pull.head_repo is None:
            data["head"]["repo"] = None
        else:
            _rename_repo(data["head"]["repo"], pull.head_repo, self.base_url)
        data["base"]["ref"] = pull.base_ref
        data["requested_teams"] = []  # the description's own example lacks a required field there
        _rename_repo(data["base"]["repo"], pull.repo, self.base_url)
        return data

    def _run_json(self, r: Run, template: dict[str, Any] | None = None) -> dict[str, Any]:
        data = template or self.spec.example("workflow-run-paginated")["workflow_runs"][0]
        api = f"{self.base_url}/repos/{r.repo}"
        data.update(
            id=r.id, name="perfgate", node_id=f"WFR_fake{r.id}", head_branch=r.branch, head_sha=r.head_sha,
            path=f".github/workflows/{r.workflow_file}", run_number=r.id % 1000, event=r.event,
            status=r.status, conclusion=r.conclusion, workflow_id=r.workflow_id,
            url=f"{api}/actions/runs/{r.id}",
            html_url=f"https://github.com/{r.repo}/actions/runs/{r.id}", pull_requests=[],
            created_at=_iso(r.created_at), updated_at=_iso(r.created_at + timedelta(minutes=6)),
            run_started_at=_iso(r.created_at), jobs_url=f"{api}/actions/runs/{r.id}/jobs",
            logs_url=f"{api}/actions/runs/{r.id}/logs", artifacts_url=f"{api}/actions/runs/{r.id}/artifacts",
            cancel_url=f"{api}/actions/runs/{r.id}/cancel", rerun_url=f"{api}/actions/runs/{r.id}/rerun",
            check_suite_url=f"{api}/check-suites/{r.id}",
            workflow_url=f"{api}/actions/workflows/{r.workflow_id}",
        )
        data["head_commit"]["id"] = r.head_sha
        _rename_repo(data["repository"], r.repo, self.base_url)
        _rename_repo(data["head_repository"], r.head_repo, self.base_url)
        return data

    def _artifact_json(self, a: Artifact) -> dict[str, Any]:
        data = self.spec.example("artifact-paginated")["artifacts"][0]
        run = self.runs[a.run_id]
        data.update(
            id=a.id, node_id=f"A_fake{a.id}", name=a.name, size_in_bytes=len(a.data),
            url=f"{self.base_url}/repos/{a.repo}/actions/artifacts/{a.id}",
            archive_download_url=f"{self.base_url}/repos/{a.repo}/actions/artifacts/{a.id}/zip",
            expired=a.expired, created_at=_iso(a.created_at), expires_at=_iso(a.expires_at),
            updated_at=_iso(a.created_at),
        )
        data["workflow_run"].update(id=run.id, head_branch=run.branch, head_sha=run.head_sha)
        return data

    def _paginate(self, items: list[Any], q: dict[str, str], path: str) -> tuple[list[Any], dict[str, str]]:
        per_page = min(int(q.get("per_page", 30)), 100)
        page = max(int(q.get("page", 1)), 1)
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        if last == 1:
            return chunk, {}

        def link(number: int, rel: str) -> str:
            params = {**q, "per_page": str(per_page), "page": str(number)}
            return f'<{self.base_url}{path}?{urlencode(params)}>; rel="{rel}"'

        rels = []
        if page > 1:
            rels += [link(page - 1, "prev"), link(1, "first")]
        if page < last:
            rels += [link(page + 1, "next"), link(last, "last")]
        return chunk, {"Link": ", ".join(rels)} if rels else {}


def _run_matches(run: Run, q: dict[str, str]) -> bool:
    status = q.get("status")
    if status in ("completed", "in_progress", "queued", "requested", "waiting", "pending"):
        status_ok = run.status == status
    else:
        status_ok = status is None or run.conclusion == status
    return (status_ok and q.get("branch", run.branch) == run.branch and q.get("event", run.event) == run.event
            and q.get("head_sha", run.head_sha) == run.head_sha)


def _rename_repo(repo: dict[str, Any], full_name: str, base_url: str) -> None:
    owner, name = full_name.split("/", 1)
    repo.update(name=name, full_name=full_name, url=f"{base_url}/repos/{full_name}",
                html_url=f"https://github.com/{full_name}", fork=False)
    repo["owner"]["login"] = owner


def _json(status: int, data: Any, headers: dict[str, str] | None = None) -> Reply:
    return status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, \
        json.dumps(data).encode("utf-8")


def _error(status: int, message: str) -> Reply:
    return _json(status, {"message": message, "documentation_url": DOCS_URL, "status": str(status)})


def _explain(exc: BaseException) -> str:
    parts = [f"{type(exc).__name__}: {exc}"]
    cause = exc.__cause__ or exc.__context__
    while cause is not None and len(parts) < 4:
        detail = getattr(cause, "schema_errors", None)
        parts.append(f"{type(cause).__name__}: {list(detail) if detail else cause}")
        cause = cause.__cause__ or cause.__context__
    return " <- ".join(parts)[:2000]


def _storage_host() -> str:
    import socket

    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
        return "127.0.0.2"
    except OSError:
        return "127.0.0.1"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections end on their own

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake: FakeGitHub = self.server.fake  # type: ignore[attr-defined]
        try:
            status, out_headers, payload = fake.handle(self.server.role, self.command, self.path,  # type: ignore[attr-defined]
                                                       headers, body)
        except Exception:  # a bug in the fake must fail the test, not hang the client
            fake._violation(f"fake crashed on {self.command} {self.path}:\n{traceback.format_exc()}")
            status, out_headers, payload = _error(500, "fake crashed")
        self.send_response(status)
        for name, value in out_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass
