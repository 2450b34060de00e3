"""The playground's server (``tensorcalc serve``): every endpoint with good input, each kind
of bad input, a missing or wrong token, another origin, an oversized request; the
derivatives it sends checked against central differences and JAX."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
from fd import numeric_jacobian
from playground_server import call, post, running
from support import ROOT, close

import tensorcalc as tc
from tensorcalc.tools import check as check_module
from tensorcalc.tools.playground import actions
from tensorcalc.tools.playground.examples import EXAMPLES
from tensorcalc.tools.playground.server import MAX_REQUEST
from tensorcalc.tools.playground.worker import Worker

IDS = ["program", "wrt", "kind", "run", "result-math", "result-text", "explain", "diagram",
       "python", "check", "check-result", "error"]
MLP = EXAMPLES["MLP"]["program"]


@pytest.fixture(scope="module")
def server():
    with running() as s:
        yield s


def npy(array) -> str:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return base64.b64encode(buffer.getvalue()).decode()


# --- the token, the origin, the files ---------------------------------------------------


def test_the_page_needs_the_token(server):
    assert call(server, "GET", "/")[0] == 403
    assert call(server, "GET", "/?token=wrong")[0] == 403
    status, body, headers = call(server, "GET", f"/?token={server.token}")
    assert status == 200
    page = body.decode()
    for element in IDS:
        assert f'id="{element}"' in page, element
    # every asset the page loads carries the token, and nothing is loaded from elsewhere
    assets = re.findall(r'(?:src|href)="([^"#]+)"', page)
    assert assets and all(a.startswith("/") and a.endswith(f"token={server.token}")
                          for a in assets), assets
    assert "script-src 'self'" in headers["Content-Security-Policy"]


def test_an_api_request_needs_the_token(server):
    for headers in ({}, {"X-Tensorcalc-Token": "wrong"}, {"X-Tensorcalc-Token": ""}):
        status, body, _ = call(server, "POST", "/api/parse", b'{"program": "y = x"}', headers)
        assert status == 403, headers
        assert "token" in json.loads(body)["error"]["message"]
    status, answer = post(server, "parse", {"program": "y = x"})
    assert status == 200 and answer["inputs"] == {"x": 0}


def test_the_token_is_accepted_in_the_query(server):
    status, body, _ = call(server, "POST", f"/api/parse?token={server.token}",
                           b'{"program": "y[i] = x[i]"}')
    assert status == 200 and json.loads(body)["inputs"] == {"x": 1}


def test_another_origin_is_refused(server):
    status, answer = post(server, "parse", {"program": "y = x"}, Origin="http://evil.example")
    assert status == 403 and "http://evil.example" in answer["error"]["message"]
    status, _ = post(server, "parse", {"program": "y = x"},
                     Origin=f"http://127.0.0.1:{server.port}")
    assert status == 200
    status, body, _ = call(server, "GET", f"/?token={server.token}",
                           headers={"Origin": "http://localhost:1"})
    assert status == 403


def test_katex_and_the_page_files_are_served(server):
    token = f"?token={server.token}"
    for path, kind in [("/katex/katex.min.js", "text/javascript"),
                       ("/katex/katex.min.css", "text/css"),
                       ("/katex/fonts/KaTeX_Main-Regular.woff2", "font/woff2"),
                       ("/static/playground.js", "text/javascript"),
                       ("/static/playground.css", "text/css")]:
        status, body, headers = call(server, "GET", path + token)
        assert status == 200 and body, path
        assert headers["Content-Type"].startswith(kind), path
    css = call(server, "GET", "/katex/katex.min.css" + token)[1].decode()
    fonts = re.findall(r"url\((fonts/[^)]+\.woff2[^)]*)\)", css)
    assert fonts and all(f.endswith(token) for f in fonts)
    examples = json.loads(call(server, "GET", "/api/examples" + token)[1])
    assert set(examples) == set(EXAMPLES)


@pytest.mark.parametrize("path", ["/static/../server.py", "/static/index.html", "/etc/passwd",
                                  "/katex/../../api.py", "/static/"])
def test_only_the_files_of_the_page_are_served(server, path):
    status, body, _ = call(server, "GET", f"{path}?token={server.token}")
    assert status == 404, path


# --- bad requests -----------------------------------------------------------------------


def test_an_oversized_request_is_refused_before_it_is_read(server):
    headers = {"X-Tensorcalc-Token": server.token, "Content-Length": str(MAX_REQUEST + 1)}
    status, body, _ = call(server, "POST", "/api/derive", None, headers)
    assert status == 413
    assert f"{MAX_REQUEST:,}" in json.loads(body)["error"]["message"]


def test_a_program_over_the_size_limit_is_refused(server):
    status, answer = post(server, "parse", {"program": "y = x + " * 3000 + "x"})
    assert status == 400
    assert f"{actions.MAX_PROGRAM:,}" in answer["error"]["message"]


@pytest.mark.parametrize("body, message", [
    (b"not json", "not JSON"),
    (b"[1, 2]", "a JSON object"),
    (b'{"program": 3}', "'program' must be text"),
    (b'{"program": "y[i] = x[i]", "wrt": "x", "kind": "curl"}', "unknown kind 'curl'"),
    (b"\xff\xfe", "not JSON"),
])
def test_a_malformed_request_says_what_is_wrong(server, body, message):
    headers = {"X-Tensorcalc-Token": server.token}
    status, answer, _ = call(server, "POST", "/api/derive", body, headers)
    assert status == 400
    assert message in json.loads(answer)["error"]["message"]


def test_an_unknown_action_is_refused(server):
    status, answer = post(server, "run_python", {"program": "y = x"})
    assert status == 400 and "unknown action 'run_python'" in answer["error"]["message"]


# --- parse ------------------------------------------------------------------------------


def test_parse_gives_the_inputs_and_the_warnings(server):
    status, answer = post(server, "parse", {"program": MLP})
    assert status == 200
    assert answer["inputs"] == {"X": 2, "W": 2, "c": 1, "V": 2, "T": 2}
    assert answer["result"] == "L" and answer["warnings"] == []
    _, trap = post(server, "parse", {"program": "R = lam * (A[i,r]^2 + B[j,r]^2)"})
    assert any("size(j)" in w for w in trap["warnings"]), trap


def test_a_syntax_error_comes_with_its_line_and_column(server):
    status, answer = post(server, "parse", {"program": "H[b,h] = X[b,d] W[d,h]\ny[i] = W[i,j x[j]"})
    assert status == 400
    error = answer["error"]
    assert (error["kind"], error["line"], error["column"]) == ("ParseError", 2, 14)
    assert "line 2, column 14" in error["message"] and "Traceback" not in error["message"]


def test_a_program_error_is_the_apis_message(server):
    source = "y[i] = frobnicate(x[i])"
    with pytest.raises(tc.ProgramError) as raised:
        tc.compile(source)
    status, answer = post(server, "parse", {"program": source})
    assert status == 400
    assert answer["error"]["message"] == str(raised.value)
    assert answer["error"]["kind"] == "ProgramError"
    assert answer["error"]["line"] == 1 and answer["error"]["column"] > 0


# --- derive -----------------------------------------------------------------------------


def test_derive_gives_every_form_of_the_mlp_gradient(server):
    status, answer = post(server, "derive", {"program": MLP, "wrt": "W", "kind": "gradient"})
    assert status == 200
    assert answer["text"] == str(tc.grad(MLP, "W"))
    assert answer["latex"].startswith("\\begin{aligned}")
    assert "\\frac{\\partial L}{\\partial W_{pq}} &=" in answer["latex"]
    assert answer["explain"] == tc.explain(MLP)
    assert answer["diagram"].startswith("<svg") and 'class="node"' in answer["diagram"]
    assert answer["python"] == tc.grad(MLP, "W").to_python()
    # the text compiles again and gives central differences' gradient
    rng = np.random.default_rng(3)
    arrays = {"X": rng.normal(size=(4, 3)), "W": rng.normal(size=(3, 5)),
              "c": rng.normal(size=5), "V": rng.normal(size=(5, 2)),
              "T": rng.normal(size=(4, 2))}
    close(tc.compile(answer["text"])(**arrays), numeric_jacobian(MLP, "W", arrays), rtol=1e-6)


def test_the_python_export_of_a_hessian_agrees_with_jax(server, jax64):
    source = EXAMPLES["logistic Hessian"]["program"]
    status, answer = post(server, "derive", {"program": source, "wrt": "w", "kind": "hessian"})
    assert status == 200
    namespace: dict = {}
    exec(compile(answer["python"], "<export>", "exec"), namespace)  # our own output
    function = namespace[re.search(r"^def ([a-zA-Z]\w*)\(", answer["python"], re.M).group(1)]
    rng = np.random.default_rng(4)
    X, w, y = rng.normal(size=(6, 3)), rng.normal(size=3), rng.uniform(size=6)
    jnp = jax64.numpy

    def loss(w):
        z = X @ w
        return jnp.sum(jnp.logaddexp(0.0, z) - y * z) + 0.5 * 0.3 * w @ w

    close(function(X=X, w=w, y=y, lam=0.3), jax64.hessian(loss)(w), rtol=1e-9)


@pytest.mark.parametrize("kind", sorted(actions.KINDS))
def test_every_kind_is_the_apis(server, kind):
    program = "L = 0.5 (A[i,j] x[j] - b[i])^2"
    status, answer = post(server, "derive", {"program": program, "wrt": "x", "kind": kind})
    assert status == 200
    assert answer["text"] == str(actions.KINDS[kind](tc.compile(program), "x"))


@pytest.mark.parametrize("request_, message", [
    ({"wrt": "H", "kind": "gradient"}, "H is computed by the program"),
    ({"wrt": "Q", "kind": "gradient"}, "Q is not an input"),
    ({"wrt": "W[p]", "kind": "gradient"}, "W has 2 axes but wrt names 1"),
    ({"wrt": "W", "kind": "gradient", "of": "H"}, "grad needs a scalar result"),
    ({"wrt": "W", "kind": "hessian", "of": "P"}, "hessian needs a scalar result"),
])
def test_a_bad_derivative_request_is_the_apis_error(server, request_, message):
    status, answer = post(server, "derive", {"program": MLP, **request_})
    assert status == 400
    assert message in answer["error"]["message"], answer
    assert answer["error"]["kind"] == "DerivativeError"


# --- check ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_derives_and_agrees_with_central_differences(server, name):
    example = EXAMPLES[name]
    status, answer = post(server, "derive", example)
    assert status == 200, answer
    status, answer = post(server, "check", example)
    assert status == 200, answer
    assert answer["verdict"] == "agree", answer["summary"]
    assert answer["largest_error"] < 1e-5


def test_check_uses_the_uploaded_arrays(server):
    W = np.arange(10.0).reshape(2, 5)
    status, answer = post(server, "check", {"program": "y[i] = W[i,j] x[j]", "wrt": "x",
                                            "kind": "derivative", "arrays": {"W": npy(W)}})
    assert status == 200, answer
    assert answer["shapes"] == {"W": [2, 5], "x": [5]}
    assert answer["summary"].startswith("dy_dx: shape (2, 5)")
    assert answer["verdict"] == "agree"


@pytest.mark.parametrize("arrays, message", [
    ({"W": npy(np.array([{"a": 1}], dtype=object))}, "Object arrays cannot be loaded"),
    ({"W": "not base64!"}, "not base64"),
    ({"W": base64.b64encode(b"PK\x03\x04 an archive").decode()}, "not an .npy file"),
    ({"Q": npy(np.ones(3))}, "unknown input Q"),
    ({"W": 3}, "must be base64 text"),
])
def test_a_bad_upload_is_refused(server, arrays, message):
    status, answer = post(server, "check", {"program": "y[i] = W[i,j] x[j]", "wrt": "x",
                                            "sizes": "j=5", "arrays": arrays})
    assert status == 400
    assert message in answer["error"]["message"], answer


def test_check_needs_the_sizes_and_keeps_to_the_memory_limit(server):
    status, answer = post(server, "check", {"program": "y[i] = W[i,j] x[j]", "wrt": "x"})
    assert status == 400 and "give the size of" in answer["error"]["message"]
    status, answer = post(server, "check", {"program": "y[i] = W[i,j] x[j]", "wrt": "x",
                                            "sizes": "i=30000,j=30000"})
    assert status == 400 and answer["error"]["kind"] == "MemoryLimitError", answer
    assert "the playground's limit is 512 MiB" in answer["error"]["message"]
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
    header["shape"] = (30000, 30000)
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    status, answer = post(server, "check", {
        "program": "y[i] = W[i,j] x[j]", "wrt": "x",
        "arrays": {"W": base64.b64encode(buffer.getvalue()).decode()}})
    assert status == 400 and answer["error"]["kind"] == "MemoryLimitError", answer


def test_check_says_undecided_where_rounding_decides(server):
    status, answer = post(server, "check", {"program": "L = 1e12 + x[i]", "wrt": "x",
                                            "kind": "gradient", "sizes": "i=3"})
    assert status == 200 and answer["verdict"] == "UNDECIDED", answer


def test_check_says_disagree_for_a_wrong_derivative(monkeypatch):
    def doubled(program, wrt, of=None):  # d(x.x)/dx is 2x, not 4x
        return tc.compile("ds_dx[p] = 4 x[p]")

    monkeypatch.setattr(check_module, "derive", doubled)
    answer = actions.answer("check", {"program": "s = x[i] x[i]", "wrt": "x", "sizes": "i=3"})
    assert answer["verdict"] == "DISAGREE", answer
    assert answer["largest_error"] == pytest.approx(0.5)


def test_a_request_past_the_time_limit_is_stopped_and_the_next_one_runs():
    worker = Worker(time_limit=1.0)
    try:
        assert worker.ask("parse", {"program": "y = x"}) == {  # started, warm
            "inputs": {"x": 0}, "result": "y", "warnings": []}
        slow = worker.ask("check", {"program": "y[i] = exp(x[i]) W[i,j] x[j]", "wrt": "x",
                                    "sizes": "i=2000,j=2000"})
        assert slow["error"]["kind"] == "TimeLimit"
        assert "time limit of 1 s" in slow["error"]["message"]
        assert worker.ask("parse", {"program": "y = x"})["inputs"] == {"x": 0}
    finally:
        worker.close()


# --- the command ------------------------------------------------------------------------


def _serve(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tensorcalc", "serve", "--port", "0", *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_serve_prints_a_loopback_url_with_a_token():
    process = _serve()
    try:
        line = process.stdout.readline()
        found = re.fullmatch(r"tensorcalc playground: http://127\.0\.0\.1:(\d+)/\?token=(\S+)\n",
                             line)
        assert found, line
        base, token = f"http://127.0.0.1:{found.group(1)}", found.group(2)
        with urllib.request.urlopen(f"{base}/?token={token}", timeout=10) as response:
            assert b'id="program"' in response.read()
        # the worker process starts under the command too
        asked = urllib.request.Request(f"{base}/api/parse", data=b'{"program": "y = x"}',
                                       headers={"X-Tensorcalc-Token": token})
        with urllib.request.urlopen(asked, timeout=30) as response:
            assert json.loads(response.read())["inputs"] == {"x": 0}
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_warns_when_it_is_not_loopback_only():
    process = _serve("--host", "0.0.0.0")
    try:
        assert process.stdout.readline().startswith("tensorcalc playground: http://0.0.0.0:")
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert "tensorcalc: warning: serving on 0.0.0.0, not on this machine only" in err


@pytest.mark.parametrize("args, message", [(["--port", "70000"], "a port is a whole number"),
                                           (["--time-limit", "0"], "a time limit is")])
def test_serve_refuses_bad_options(args, message):
    result = subprocess.run([sys.executable, "-m", "tensorcalc", "serve", *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and message in result.stderr
