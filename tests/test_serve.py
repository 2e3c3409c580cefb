"""makemore serve: the API through FastAPI's test client, a real server process, and the page in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="makemore serve needs fastapi: pip install -e '.[serve]'")
httpx = pytest.importorskip("httpx", reason="the serve tests drive the API with httpx: pip install httpx")

with warnings.catch_warnings():  # starlette's test client asks for httpx2, which makemore does not need
    warnings.filterwarnings("ignore", message="Using `httpx`")
    from fastapi.testclient import TestClient  # noqa: E402

import makemore  # noqa: E402
from makemore.cli import main  # noqa: E402
from makemore.config import ConfigError  # noqa: E402
from makemore.constrain import ConstraintError  # noqa: E402
from makemore.score import ScoreError  # noqa: E402
from makemore.serve import create_app, load_runs, server  # noqa: E402
from makemore.serve.errors import StrictJSONResponse  # noqa: E402
from makemore.serve.schemas import MAX_BODY, SampleRequest  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx`", "ignore:the budget of")
ROOT = Path(__file__).parent.parent
QUICK = {"max_steps": 20, "eval_interval": 10, "batch_size": 16, "n_embd2": 16, "threads": 1, "progress": False}


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory, tiny_items) -> Path:
    """A folder of two finished runs (an MLP of 20 steps, an n-gram) and one unfinished folder, to be skipped."""
    root = tmp_path_factory.mktemp("serve")
    names = root / "names.txt"
    names.write_text("\n".join(tiny_items) + "\n", encoding="utf-8")
    makemore.train(input=str(names), type="mlp", work_dir=str(root / "runs" / "mlp"), **QUICK)
    makemore.train(input=str(names), type="ngram", work_dir=str(root / "runs" / "ngram"), progress=False)
    (root / "runs" / "unfinished").mkdir()
    (root / "runs" / "unfinished" / "config.yaml").write_text("model: {type: mlp}\n")
    return root / "runs"


@pytest.fixture(scope="session")
def runs(runs_dir):
    return load_runs([runs_dir])


@pytest.fixture(scope="session")
def client(runs):
    return TestClient(create_app(runs), raise_server_exceptions=False)


def strict_json(text: str):
    """The JSON of text, refusing NaN and Infinity."""
    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=refuse)


# --- loading ------------------------------------------------------------------------------------------------------


def test_a_folder_of_runs_serves_each_finished_run_by_its_folder_name(runs, runs_dir):
    assert list(runs) == ["mlp", "ngram"]  # the unfinished folder is left out
    assert list(load_runs([runs_dir / "ngram"])) == ["ngram"]  # a run folder serves itself


def test_runs_of_the_same_folder_name_are_told_apart_by_their_parent(runs_dir, tmp_path):
    shutil.copytree(runs_dir / "ngram", tmp_path / "other" / "ngram")
    assert list(load_runs([runs_dir / "ngram", tmp_path / "other"])) == ["runs/ngram", "other/ngram"]


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "no finished run in")])
def test_a_folder_without_runs_is_a_one_line_error(make, message, tmp_path):
    with pytest.raises(ConfigError, match=message) as e:
        load_runs([make(tmp_path)])
    assert "\n" not in str(e.value)


# --- the API ------------------------------------------------------------------------------------------------------


def test_healthz_and_the_page(client):
    assert client.get("/healthz").json() == {"status": "ok", "runs": 2}
    page = client.get("/")
    assert page.status_code == 200 and 'id="sample-form"' in page.text and "http" not in page.text.split("<body>")[0]
    for asset in ("app.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200
    assert "/api/sample" in client.get("/openapi.json").json()["paths"]


def test_runs_lists_each_run_with_its_exact_nlls(client, runs_dir):
    body = client.get("/api/runs").json()
    assert body["default"] == "mlp" and [r["name"] for r in body["runs"]] == ["mlp", "ngram"]
    mlp = body["runs"][0]
    results = json.loads((runs_dir / "mlp" / "results.json").read_text())
    assert mlp["type"] == "mlp" and mlp["params"] == results["params"]
    assert mlp["dev_nll"] == results["dev"]["nll"] and mlp["test_nll"] == results["test"]["nll"]
    assert mlp["vocab"] == "abcdefghijklmnopqrstuvwxyz" and mlp["vocab_size"] == 27 and mlp["labels"] == []
    assert mlp["sample"]["seed"] == 42


def test_a_sample_is_the_cli_sample_of_the_same_seed(client, runs_dir, capsys):
    body = client.post("/api/sample", json={"n": 7, "seed": 3}).json()
    assert main(["sample", "--work-dir", str(runs_dir / "mlp"), "-n", "7", "--seed", "3", "--plain"]) == 0
    assert [w["word"] for w in body["words"]] == capsys.readouterr().out.splitlines()  # an empty word too
    assert body["run"] == "mlp" and body["complete"] and body["message"] is None
    assert body["stats"]["requested"] == body["stats"]["kept"] == 7


def test_each_sampled_word_has_its_origin_and_its_nll_as_score_gives_it(client, runs):
    body = client.post("/api/sample", json={"run": "ngram", "n": 30, "temperature": 0.5}).json()
    words = [w["word"] for w in body["words"]]
    scores = runs["ngram"].score(words)
    assert [w["nll"] for w in body["words"]] == [s.nll for s in scores]
    assert [w["origin"] for w in body["words"]] == [s.origin for s in scores]
    assert {w["origin"] for w in body["words"]} <= {"train", "dev/test", "new"} and len(words) == 30


OPTIONS = [  # each option of makemore sample, and what every word must then show
    ({"temperature": 0.3}, None), ({"top_k": 2}, None), ({"top_p": 0.5}, None),
    ({"prefix": "ma"}, lambda w, d: w.startswith("ma")), ({"suffix": "a"}, lambda w, d: w.endswith("a")),
    ({"contains": "e"}, lambda w, d: "e" in w), ({"regex": "^[aeiou]"}, lambda w, d: w[0] in "aeiou"),
    ({"match": "[a-z]*n"}, lambda w, d: w.endswith("n")),
    ({"min_length": 5, "max_length": 6}, lambda w, d: 5 <= len(w) <= 6),
    ({"novel": True}, lambda w, d: d["origin"] == "new"), ({"unique": True}, None),
    ({"constrain": "reject", "suffix": "e", "tries": 5000}, lambda w, d: w.endswith("e")),
    ({"seed": 11}, None), ({"most_likely": True, "budget": 50_000}, lambda w, d: 0 < d["prob"] < 1),
]


@pytest.mark.parametrize("options, check", OPTIONS, ids=[",".join(o) for o, _ in OPTIONS])
def test_every_sample_option_reaches_run_sample(options, check, client, runs):
    body = client.post("/api/sample", json={"n": 6, **options}).json()
    words = [w["word"] for w in body["words"]]
    assert words == list(runs["mlp"].sample(6, **options)) and len(words) == 6
    for w in body["words"]:
        assert check is None or check(w["word"], w), w
    if options.get("unique"):
        assert len(set(words)) == 6
    if options.get("most_likely"):
        probs = [w["prob"] for w in body["words"]]
        assert probs == sorted(probs, reverse=True) and body["stats"]["budget"] == 50_000
    if options.get("constrain"):
        assert body["stats"]["constrain"] == "reject" and body["stats"]["tries"] == 5000


def test_a_budget_that_runs_out_gives_the_words_found_and_the_message(client):
    body = client.post("/api/sample", json={"n": 3, "regex": "qqq", "tries": 20}).json()
    assert body["words"] == [] and body["complete"] is False and "budget of 20 tries ran out" in body["message"]
    assert body["message"].endswith("raise tries")


def test_score_gives_nll_bits_and_each_letters_probability(client, runs):
    body = client.post("/api/score", json={"words": ["emma", "zzxq"]}).json()
    emma = runs["mlp"].score(["emma"])[0]
    first = body["words"][0]
    assert first["word"] == "emma" and first["nll"] == emma.nll and first["bpc"] == emma.bpc
    assert [c["p"] for c in first["chars"]] == emma.probs and [c["char"] for c in first["chars"]] == [*"emma", None]
    assert body["total"]["words"] == 2 and body["total"]["targets"] == 10 and body["skipped"] == []


def test_score_can_skip_the_words_it_cannot_score_and_stays_strict_json(client):
    response = client.post("/api/score", json={"words": ["EMMA"], "skip_unknown": True})
    body = strict_json(response.text)  # no word: the total NLL is not a number, so null
    assert body["words"] == [] and body["skipped"] == ["EMMA"] and body["total"]["nll"] is None


def test_every_response_is_strict_json_nan_and_infinity_null():
    response = StrictJSONResponse({"nll": float("nan"), "rows": [float("inf"), 1.5], "n": 2})
    assert response.body == b'{"nll":null,"rows":[null,1.5],"n":2}'


def impossible_message(runs) -> str:
    """The sampler's own message, its flags named as request keys (--match: match)."""
    with pytest.raises(ConstraintError) as e:
        runs["mlp"].sample(3, match="zzzzzz", max_length=3)
    assert "--match 'zzzzzz'" in str(e.value)
    return str(e.value).replace("--match", "match")


def unscorable_message(runs) -> str:
    with pytest.raises(ScoreError) as e:
        runs["mlp"].score(["EMMA"])
    assert "pass --skip-unknown" in str(e.value)
    return str(e.value).replace("--skip-unknown", "skip_unknown")


BAD = [  # request, status, what the message says (a string: in it; a function of runs: exactly it)
    ("/api/sample", {"run": "nope"}, 404, "no run named 'nope' is served: choose one of mlp, ngram"),
    ("/api/sample", {"n": 1001}, 422, "n: input should be less than or equal to 1000"),
    ("/api/sample", {"n": 0}, 422, "n: input should be greater than or equal to 1"),
    ("/api/sample", {"colour": "red"}, 422, "unknown field 'colour': the fields are run, n, temperature"),
    ("/api/sample", {"n": "5"}, 422, "n: input should be a valid integer"),
    ("/api/sample", {"novel": "yes"}, 422, "novel: input should be a valid boolean"),
    ("/api/sample", {"temperature": -1}, 422, "temperature: input should be greater than 0"),
    ("/api/sample", {"prefix": "a" * 65}, 422, "prefix: string should have at most 64 characters"),
    ("/api/sample", {"constrain": "maybe"}, 422, "constrain: input should be 'mask' or 'reject'"),
    ("/api/sample", {"label": "girls"}, 400, "this run was not trained on labelled data, so label 'girls' has no"),
    ("/api/sample", {"label": "x" * 201}, 422, "label: string should have at most 200 characters"),
    ("/api/sample", {"label": ["a"] * 1001}, 422, "label: list should have at most 1000 items"),
    ("/api/sample", {"label": 5}, 422, "label: input should be a valid string"),
    ("/api/sample", {"prefix": "Q"}, 400, "prefix 'Q' has characters not in the vocabulary"),
    ("/api/sample", {"n": 3, "match": "zzzzzz", "max_length": 3}, 400, impossible_message),
    ("/api/score", {"words": ["a" * 65]}, 422, "words.0: string should have at most 64 characters"),
    ("/api/score", {"words": ["a"] * 1001}, 422, "words: list should have at most 1000 items"),
    ("/api/score", {"words": []}, 422, "words: list should have at least 1 item"),
    ("/api/score", {}, 422, "words: field required"),
    ("/api/score", {"words": "emma"}, 422, "words: input should be a valid list"),
    ("/api/score", {"words": ["EMMA"]}, 400, unscorable_message),
    ("/api/score", {"words": ["emma"], "labels": True}, 400, "this run was not trained on labelled data, so it has"),
    ("/api/score", {"words": ["emma"], "label": ["a"]}, 422, "label: input should be a valid string"),
]


def assert_one_sentence(response, status: int, tmp_root: str) -> str:
    """An error response as agreed: the status, exactly {"error": one line}, no traceback, no path."""
    assert response.status_code == status, response.text
    body = strict_json(response.text)
    assert list(body) == ["error"] and isinstance(body["error"], str)
    message = body["error"]
    assert "\n" not in message and len(message) <= 400 and "Traceback" not in message
    assert tmp_root not in response.text and str(ROOT) not in response.text and "site-packages" not in response.text
    return message


@pytest.mark.parametrize("path, body, status, expected", BAD, ids=[f"{p}-{json.dumps(b)[:30]}" for p, b, *_ in BAD])
def test_a_bad_request_is_one_sentence(path, body, status, expected, client, runs, runs_dir):
    message = assert_one_sentence(client.post(path, json=body), status, str(runs_dir.parent))
    if callable(expected):
        assert message == expected(runs)
    else:
        assert message.startswith(expected), message


@pytest.mark.parametrize("content, message", [
    (b"{nope", "the body is not valid JSON"), (b"[1, 2]", "the body must be one JSON object")])
def test_a_body_that_is_not_a_json_object_is_one_sentence(content, message, client, runs_dir):
    response = client.post("/api/sample", content=content, headers={"content-type": "application/json"})
    assert assert_one_sentence(response, 422, str(runs_dir.parent)).startswith(message)


def test_a_body_over_64_kib_is_a_413_declared_or_streamed(client, runs_dir):
    big = json.dumps({"words": ["emma"] * 20_000}).encode()
    assert len(big) > MAX_BODY
    declared = client.post("/api/score", content=big, headers={"content-type": "application/json"})
    assert "over 64 KiB" in assert_one_sentence(declared, 413, str(runs_dir.parent))
    chunks = (big[i: i + 8192] for i in range(0, len(big), 8192))  # no content-length: counted as it arrives
    streamed = client.post("/api/score", content=chunks, headers={"content-type": "application/json"})
    assert "over 64 KiB" in assert_one_sentence(streamed, 413, str(runs_dir.parent))


@pytest.mark.parametrize("method, path, status", [("get", "/nowhere", 404), ("get", "/api/sample", 405)])
def test_unknown_pages_and_methods_are_one_sentence(method, path, status, client, runs_dir):
    assert_one_sentence(getattr(client, method)(path), status, str(runs_dir.parent))


def test_a_model_error_is_a_500_of_one_line_and_the_server_serves_on(client, runs, runs_dir, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError(f"tensor trouble in {runs_dir}/mlp/model.pt\nsecond line")

    monkeypatch.setattr(runs["mlp"], "sample", broken)
    message = assert_one_sentence(client.post("/api/sample", json={"n": 2}), 500, str(runs_dir.parent))
    assert message == "the model failed on this request (RuntimeError); the server is still serving"
    assert "tensor trouble" in caplog.text  # the whole story is in the server's log, not the response
    monkeypatch.undo()
    assert client.post("/api/sample", json={"n": 2}).status_code == 200


def test_the_request_schema_has_every_sample_option():
    """Every SampleConfig field but num (the request's n) is a request key, and label, as agreed."""
    import dataclasses

    from makemore.config import SampleConfig
    fields = {f.name for f in dataclasses.fields(SampleConfig)} - {"num"}
    assert set(SampleRequest.model_fields) == fields | {"run", "n", "label"}


# --- labelled runs ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def labelled(tmp_path_factory, tiny_items):
    """A labelled n-gram (counts: no training loop): real names, and the same names with every letter twice."""
    root = tmp_path_factory.mktemp("labelled")
    lines = [f"first\t{w}" for w in tiny_items] + [f"twice\t{''.join(c + c for c in w)}" for w in tiny_items]
    (root / "labelled.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    makemore.train(input=str(root / "labelled.txt"), labeled=True, type="ngram", work_dir=str(root / "tagged"),
                   progress=False)
    runs = load_runs([root / "tagged"])
    return runs["tagged"], TestClient(create_app(runs), raise_server_exceptions=False)


def test_a_labelled_run_lists_its_labels(labelled):
    _, client = labelled
    assert client.get("/api/runs").json()["runs"][0]["labels"] == ["first", "twice"]


@pytest.mark.parametrize("label", ["twice", ["first", "twice"], "all", None])
def test_a_sample_of_a_labelled_run_tags_each_word_with_its_label_and_scores_it_under_it(label, labelled):
    run, client = labelled
    body = client.post("/api/sample", json={"n": 12, **({} if label is None else {"label": label})}).json()
    words = [w["word"] for w in body["words"]]
    expected = run.sample(12, **({} if label is None else {"label": label}))
    assert words == list(expected) and [w["label"] for w in body["words"]] == expected.labels
    for w in body["words"]:
        assert w["nll"] == run.score([w["word"]], label=w["label"])[0].nll
    if label == "twice":
        assert all(w["label"] == "twice" for w in body["words"])


def test_scores_under_a_label_and_each_words_label_ranks(labelled):
    run, client = labelled
    body = client.post("/api/score", json={"words": ["emma", "eemmmmaa"], "label": "twice", "labels": True}).json()
    assert [w["nll"] for w in body["words"]] == [s.nll for s in run.score(["emma", "eemmmmaa"], label="twice")]
    first, doubled = (w["labels"] for w in body["words"])
    assert list(first) == ["first", "twice"] and list(doubled) == ["twice", "first"]  # likeliest first
    assert sum(first.values()) == pytest.approx(1.0) and first == run.classify(["emma"])[0]


def test_an_unknown_label_is_the_apis_own_400(labelled, runs_dir):
    run, client = labelled
    response = client.post("/api/sample", json={"label": "thrice"})
    message = assert_one_sentence(response, 400, str(runs_dir.parent))
    assert "thrice" in message and "first" in message


# --- the command ----------------------------------------------------------------------------------------------------


def test_serve_without_fastapi_says_which_extra_to_install(runs_dir, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "makemore.serve" or m.startswith("makemore.serve.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi now fails as if it were not installed
    assert main(["serve", str(runs_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("makemore: error: makemore serve needs fastapi") and "pip install -e '.[serve]'" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("host, warned", [("127.0.0.1", False), ("0.0.0.0", True)])
def test_a_host_other_than_loopback_prints_a_warning(host, warned, runs_dir, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **kw: calls.append(kw))
    assert server.serve([str(runs_dir / "ngram")], host=host, port=free_port()) == 0
    assert calls[0]["host"] == host and ("makemore: warning: --host" in capsys.readouterr().err) == warned


def test_a_port_in_use_is_a_one_line_error(runs_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1:\d+: .*choose another --port"):
            server.serve([str(runs_dir / "ngram")], port=taken.getsockname()[1])


# --- a real server process --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live(runs_dir):
    """`python -m makemore serve RUN_DIR --port P` in its own process, until the module's tests are done.

    MAKEMORE_SERVE_RUNS serves other runs instead (the README's screenshot is taken of better-trained ones).
    """
    port = free_port()
    served = os.environ.get("MAKEMORE_SERVE_RUNS", str(runs_dir))
    proc = subprocess.Popen([sys.executable, "-m", "makemore", "serve", served, "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the server did not start: {proc.communicate()[1][-2000:]}")
        time.sleep(0.2)
    yield url, proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def test_a_real_server_answers_a_real_client(live, runs, runs_dir):
    url, proc = live
    if "MAKEMORE_SERVE_RUNS" not in os.environ:
        body = httpx.post(f"{url}/api/sample", json={"n": 5}).json()  # the README's request
        assert [w["word"] for w in body["words"]] == list(runs["mlp"].sample(5))
    results = {}

    def ask(seed: int) -> None:
        results[seed] = httpx.post(f"{url}/api/sample", json={"n": 20, "seed": seed}, timeout=60).json()["words"]

    threads = [threading.Thread(target=ask, args=(seed,)) for seed in range(8)]  # concurrent requests, own seeds
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed in range(8):  # each the same as asked alone: no request disturbed another's random state
        assert results[seed] == httpx.post(f"{url}/api/sample", json={"n": 20, "seed": seed}).json()["words"]
    bad = httpx.post(f"{url}/api/sample", json={"n": 5000})
    assert bad.status_code == 422 and bad.json() == {"error": "n: input should be less than or equal to 1000"}
    assert httpx.post(f"{url}/api/score", json={"words": ["emma"]}).json()["words"][0]["word"] == "emma"


# --- the page in a real browser -----------------------------------------------------------------------------------


def browser():
    """Headless Chromium driven by selenium, or a skip saying what is missing."""
    try:
        from selenium import webdriver
    except ImportError:
        pytest.skip("the browser test needs selenium: pip install selenium")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        reason = "no chromium or chromedriver on PATH: apt-get install -y chromium chromium-driver"
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                 "--window-size=1200,900", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))


def test_the_page_generates_names_and_scores_a_word_in_chromium(live, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = live
    runs = httpx.get(f"{url}/api/runs").json()["runs"]
    driver = browser()
    try:
        wait = WebDriverWait(driver, 30)
        driver.get(url + "/")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#runs-table tbody tr")) == len(runs))
        rows = driver.find_elements(By.CSS_SELECTOR, "#runs-table tbody tr")
        table = [r.find_element(By.TAG_NAME, "td").text for r in rows]
        assert table == [r["name"] for r in sorted(runs, key=lambda r: r["dev_nll"])]  # by dev NLL
        n = driver.find_element(By.ID, "n")
        n.clear()
        n.send_keys("8")
        second = runs[-1]["name"]
        Select(driver.find_element(By.ID, "run-b")).select_by_value(second)
        driver.find_element(By.ID, "generate-button").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#samples .column")) == min(2, len(runs)))
        columns = driver.find_elements(By.CSS_SELECTOR, "#samples .column")
        origins = set()
        for column, run in zip(columns, [runs[0], runs[-1]]):  # each column shows what the API gives its run
            shown = [w.text for w in column.find_elements(By.CSS_SELECTOR, ".word")]
            expected = httpx.post(f"{url}/api/sample", json={"run": run["name"], "n": 8,
                                                             "temperature": runs[0]["sample"]["temperature"]}).json()
            assert shown == [w["word"] or "(empty)" for w in expected["words"]]
            tags = [t.text for t in column.find_elements(By.CSS_SELECTOR, ".tag")]
            assert tags == [w["origin"] for w in expected["words"]]
            origins |= set(tags)
        assert len(origins) > 1, "the words shown should have more than one origin, to check the tags"
        assert all(re.fullmatch(r"nll \d+\.\d{3}", t.text) for t in columns[0].find_elements(By.CSS_SELECTOR, ".nll"))
        assert columns[0].find_element(By.CSS_SELECTOR, ".stats").text.startswith("drew ")
        word = driver.find_element(By.ID, "word")
        word.send_keys("emma", Keys.ENTER)  # the keyboard alone submits the form
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#scored .letter")) == 5)
        letters = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#scored .letter .char")]
        assert letters == ["e", "m", "m", "a", "⏎"]
        score = httpx.post(f"{url}/api/score", json={"words": ["emma"]}).json()["words"][0]
        assert f"nll {score['nll']:.4f} nats/char" in driver.find_element(By.CSS_SELECTOR, "#scored .summary").text
        word.clear()
        word.send_keys("EMMA", Keys.ENTER)
        wait.until(lambda d: d.find_element(By.ID, "score-error").is_displayed())
        assert "not in the vocabulary" in driver.find_element(By.ID, "score-error").text
        word.clear()
        word.send_keys("emma", Keys.ENTER)
        wait.until(lambda d: not d.find_element(By.ID, "score-error").is_displayed())
        screenshots(driver, tmp_path)
    finally:
        driver.quit()


def screenshots(driver, tmp_path: Path) -> None:
    """The page at desktop and at phone width (390 px, nothing wider than the screen); kept where asked.

    MAKEMORE_SCREENSHOT=1 writes them to docs/figures/serve.png and serve-phone.png, else to a temporary folder.
    """
    where = ROOT / "docs" / "figures" if os.environ.get("MAKEMORE_SCREENSHOT") else tmp_path
    driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    desktop = {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", desktop)
    desktop["height"] = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", desktop)  # the whole page in one picture
    assert driver.save_screenshot(str(where / "serve.png"))
    phone = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}  # a window is at least 500 wide
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", phone)
    time.sleep(0.3)
    width, scroll = driver.execute_script("return [window.innerWidth, document.documentElement.scrollWidth]")
    assert width == 390 and scroll <= 390, f"the page is {scroll} px wide on a phone's {width}"
    phone["height"] = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", phone)
    assert driver.save_screenshot(str(where / "serve-phone.png"))


def test_sigterm_stops_the_server_within_seconds(live):
    """Last in the module: it stops the server the tests above share."""
    url, proc = live
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and time.monotonic() - start < 5, err
    assert "Traceback" not in err and err.rstrip().endswith("makemore serve: stopped")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/healthz", timeout=1)
