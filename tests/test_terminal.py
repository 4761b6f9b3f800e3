"""What a new user meets at the terminal (issue 22's terminal items), each as the user meets it.

The commands run through Typer's CliRunner (stdout is then not a terminal, like a pipe or a log),
as real processes writing to a file, and, for the interactive session's line editing, on a
pseudo-terminal (the standard library's ``pty``) where keys are typed as a person types them.
A tiny generated ml-100k and a model trained on it once serve every test.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main
from movielens_fakes import generated_releases
from recsys_rbm_cli.app import app
from recsys_rbm_cli.common import plural
from recsys_rbm_cli.movielens_options import score_text
from recsys_rbm_cli.plain_progress import PlainProgress
from recsys_rbm_cli.titles import titles_containing
from test_cli_movielens import TINY, flat, one_error_line, write_tiny_100k
from typer.testing import CliRunner

from recsys_rbm.io.checkpoint_files import read_metadata

README = Path(__file__).parent.parent / "README.md"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]|\r")


@pytest.fixture(scope="module", autouse=True)
def generated_movielens() -> Iterator[None]:
    """The tiny ml-100k is generated: it has neither the real release's rating count nor its file hashes."""
    with generated_releases():
        yield


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("terminal") / "data"
    write_tiny_100k(directory)
    return directory


@pytest.fixture(scope="module")
def model(runner: CliRunner, data_dir: Path) -> Path:
    """The joint (user-based) model of the tiny release, every rating in its profiles."""
    path = data_dir.parent / "runs" / "user.safetensors"
    result = runner.invoke(app, ["train", "movielens", "--data-dir", str(data_dir), "--output", str(path), *TINY])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def models_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models folder of the test's own ($RBM_REC_MODELS), where commands save and find the default model."""
    folder = tmp_path / "models"
    monkeypatch.setenv("RBM_REC_MODELS", str(folder))
    return folder


# --- 1. the quickstart twice: the default model is replaced, the previous one kept ----------------------


def test_training_the_default_model_again_replaces_it_and_keeps_the_previous_one(
    runner: CliRunner, data_dir: Path, models_folder: Path
) -> None:
    train = ["train", "movielens", "--data-dir", str(data_dir), *TINY]
    target = models_folder / "movielens-ml-100k.safetensors"
    previous = models_folder / "movielens-ml-100k.previous.safetensors"
    saved = []
    for seed in ("1", "2", "3"):  # the quickstart run again and again
        result = runner.invoke(app, [*train, "--seed", seed])
        assert result.exit_code == 0, result.output
        assert read_metadata(target)["seed"] == int(seed)
        if saved:
            assert f"kept the previous model as {previous}" in flat(result.output)
            assert previous.read_bytes() == saved[-1]  # the one it replaced, whole
        saved.append(target.read_bytes())
    assert sorted(path.name for path in models_folder.iterdir()) == [previous.name, target.name]


def test_a_model_path_the_user_named_is_still_replaced_only_with_overwrite(
    runner: CliRunner, data_dir: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "mine.safetensors"
    train = ["train", "movielens", "--data-dir", str(data_dir), "--output", str(mine), *TINY]
    assert runner.invoke(app, train).exit_code == 0
    first = mine.read_bytes()
    line = one_error_line(runner.invoke(app, [*train, "--seed", "2"]))
    assert f"{mine} already exists; pass --overwrite to replace it" in line and mine.read_bytes() == first
    assert runner.invoke(app, [*train, "--seed", "2", "--overwrite"]).exit_code == 0
    assert read_metadata(mine)["seed"] == 2 and sorted(path.name for path in tmp_path.iterdir()) == [mine.name]


# --- 3. the interactive session ------------------------------------------------------------------------


def test_search_finds_every_title_holding_the_words() -> None:
    titles = [
        "Alien (1979)",
        "Aliens (1986)",
        "Alien 3 (1992)",
        "Alien: Resurrection (1997)",
        "Godfather, The (1972)",
        "Godfather: Part II, The (1974)",
        "Godfather: Part III, The (1990)",
        "Star Wars (1977)",
    ]
    assert titles_containing("alien", titles) == [0, 1, 2, 3]
    assert titles_containing("godfather", titles) == [4, 5, 6]
    assert titles_containing("the godfather part ii", titles) == [5, 6]  # "ii" begins "iii" too
    assert titles_containing("wars 1977", titles) == [7] and titles_containing("trek", titles) == []


@pytest.mark.realdata
def test_search_on_movielens_finds_the_aliens_and_the_godfathers() -> None:
    from recsys_rbm.data.movielens import load_movielens

    value = os.environ.get("RBM_REC_DATA")
    if not value or not (Path(value) / "ml-100k").exists():
        pytest.skip("RBM_REC_DATA does not hold ml-100k/")
    titles = [str(title) for title in load_movielens("ml-100k", value, download=False).movies.titles]
    found = {titles[i] for i in titles_containing("alien", titles)}
    assert {"Alien (1979)", "Aliens (1986)", "Alien 3 (1992)", "Alien: Resurrection (1997)"} <= found
    assert "Godfather: Part II, The (1974)" in {titles[i] for i in titles_containing("godfather", titles)}


def session(runner: CliRunner, model: Path, *lines: str, top: str = "3"):
    return runner.invoke(
        app, ["interactive", "--model", str(model), "--top", top], input="".join(f"{line}\n" for line in lines)
    )


def test_the_session_starts_with_a_list_before_any_rating(runner: CliRunner, model: Path) -> None:
    result = session(runner, model, "quit")
    assert result.exit_code == 0, result.output
    output = flat(result.stdout)
    assert "To start: the model's list for someone with no ratings yet" in output
    table = output.split("To start:")[1].split("Bye:")[0]
    assert len(re.findall(r"│ +[123] │", table)) == 3 and "Bye: 0 ratings this session." in output


def test_search_in_the_session_lists_every_match(runner: CliRunner, model: Path) -> None:
    result = session(runner, model, "search star", "search heat", "search zzzz")
    assert result.exit_code == 0, result.output
    output = flat(result.stdout)
    assert "2 titles with 'star':" in output
    assert "Star Wars (1977), id 1" in output and "Star Trek: First Contact (1996), id 7" in output
    assert "Heat (1995), id 5" in output and "Heat (1972), id 6" in output
    assert "No title holds 'zzzz', and none is close." in output


def test_leaving_with_unsaved_ratings_asks_once_more(runner: CliRunner, model: Path, tmp_path: Path) -> None:
    for leave in (["quit", "quit"], ["quit", ""], []):  # quit twice; quit, then end of input; end of input twice
        result = session(runner, model, "rate star wars 5", *leave)
        assert result.exit_code == 0, result.output
        warnings = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(warnings) == 1 and warnings[0].startswith("warning: your 1 rating is not saved;"), result.stderr
        assert "'save FILE' keeps them" in warnings[0]
        assert "Bye: 1 rating this session, not saved." in flat(result.stdout)
    saved = tmp_path / "mine.csv"
    result = session(runner, model, "rate star wars 5", f"save {saved}", "quit")
    assert result.exit_code == 0 and result.stderr.strip() == "", result.output  # nothing to lose: no question
    assert "Bye: 1 rating this session." in flat(result.stdout)


def test_save_replaces_an_existing_file_only_when_told(runner: CliRunner, model: Path, tmp_path: Path) -> None:
    saved = tmp_path / "mine.csv"
    before = model.read_bytes()
    result = session(
        runner,
        model,
        "rate star wars 5",
        f"save {saved}",
        "rate heat (1995) 4",
        f"save {saved}",  # refused: the file exists
        f"save {saved} --overwrite",
        f"save {model} --overwrite",  # never the model the session reads
        "quit",
    )
    assert result.exit_code == 0, result.output
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 2, result.stderr
    assert f"{saved} already exists; 'save {saved} --overwrite' replaces it, or give another file name" in errors[0]
    assert "is the model this session reads; save the ratings to another file" in errors[1]
    assert saved.read_text() == "movie,rating\n1,5\n5,4\n" and model.read_bytes() == before
    assert "Saved 2 ratings to" in flat(result.stdout)


class Terminal:
    """A process on a pseudo-terminal: keys go in as typed, and what it draws is read back (escapes removed)."""

    def __init__(self, args: list[str], environment: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pseudo-terminal is its controlling terminal
            for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # as a shell starts it, whatever the tests
                signal.signal(number, signal.SIG_DFL)  # (or their runner) did to this process's signals
            os.execve(sys.executable, [sys.executable, "-m", "recsys_rbm_cli", *args], environment)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.seen = ""
        self.mark = 0  # what expect() has matched so far

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def interrupt(self) -> None:
        """Ctrl-C, a moment after the prompt appeared, as a person presses it: a signal sent in the instant between
        the prompt being drawn and readline waiting for keys is seen only at the next key (Python checks signals
        when the wait is interrupted)."""
        time.sleep(0.5)
        self.type("\x03")

    def expect(self, text: str, timeout: float = 90) -> None:
        """Wait until ``text`` is drawn after what the last expect() matched."""
        deadline = time.monotonic() + timeout
        while text not in self.seen[self.mark :]:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(0.0, remaining))
            if not ready:
                raise AssertionError(f"{text!r} never appeared; the terminal showed:\n{self.seen}")
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # the process ended and its terminal closed
                raise AssertionError(f"{text!r} never appeared; the terminal showed:\n{self.seen}") from None
            self.seen += ANSI.sub("", chunk.decode("utf-8", errors="replace"))
        self.mark = self.seen.index(text, self.mark) + len(text)

    def exit_code(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                while select.select([self.fd], [], [], 0.1)[0]:
                    self.seen += ANSI.sub("", os.read(self.fd, 65536).decode("utf-8", errors="replace"))
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"the process did not end; the terminal showed:\n{self.seen}")


def test_at_a_terminal_lines_are_edited_and_recalled_and_ctrl_c_asks_before_losing_ratings(model: Path) -> None:
    environment = {**os.environ, "TERM": "xterm", "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    terminal = Terminal(["interactive", "--model", str(model), "--top", "3"], environment)
    terminal.expect("To start: the model's list")
    terminal.expect("> ")
    terminal.type("rate star wars 5\r")
    terminal.expect("Rated Star Wars (1977): 5.")
    terminal.expect("> ")
    terminal.type("\x1b[A\r")  # Up arrow: the line before, again
    terminal.expect("Rated Star Wars (1977): 5.")
    terminal.expect("> ")
    terminal.type("earch jedi\x01s\r")  # Ctrl-A goes to the start of the line, where the missing 's' goes
    terminal.expect("Return of the Jedi (1983), id 2")
    terminal.expect("> ")
    terminal.interrupt()  # Ctrl-C with a rating not saved: a warning, and the session goes on
    terminal.expect("warning: your 1 rating is not saved")
    terminal.expect("> ")
    terminal.interrupt()  # asked twice: leave
    terminal.expect("Bye: 1 rating this session, not saved.")
    assert terminal.exit_code() == 0
    assert "unknown command" not in terminal.seen and "error:" not in terminal.seen


# --- 4. output that is not a terminal: whole lines, progress as plain lines ---------------------------------


def test_piped_training_prints_whole_lines_whatever_the_width(tmp_path: Path) -> None:
    table = tmp_path / "ratings.csv"
    table.write_text(
        "user,item,rating\n"
        + "".join(f"{u},{i},{1 + (u * 7 + i * 3) % 5}\n" for u in range(1, 31) for i in range(1, 13) if (u + i) % 3)
    )
    output = tmp_path / ("a-folder-with-a-long-name-" * 4) / "model.safetensors"  # far wider than 80 columns
    log = tmp_path / "log"
    environment = {**os.environ, "COLUMNS": "40", "OMP_NUM_THREADS": "1", "RBM_REC_MODELS": str(tmp_path)}
    command = [sys.executable, "-m", "recsys_rbm_cli", "train", "ratings", str(table), "--output", str(output), *TINY]
    with log.open("w") as stdout:  # rbm-rec train ratings … > log
        completed = subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, env=environment, timeout=300)
    assert completed.returncode == 0, completed.stderr.decode()
    lines = log.read_text().splitlines()
    epochs = [line for line in lines if line.startswith("epoch")]
    pattern = (
        r"epoch +\d+  CD-1  train RMSE \d\.\d{4}  validation RMSE \d\.\d{4}  validation NDCG@10 \d\.\d{4}  \d+\.\d s"
    )
    assert len(epochs) == 2 and all(re.fullmatch(pattern + r"(  best, saved)?", line) for line in epochs), lines
    assert any(line.startswith("Training joint RBM") and line.endswith("updates).") for line in lines)
    assert any(line.startswith("saved") and line.rstrip().endswith(str(output)) for line in lines), lines
    assert "…" not in log.read_text() and "\x1b" not in log.read_text()


def test_a_table_title_longer_than_its_table_stays_one_line(runner: CliRunner, model: Path) -> None:
    result = runner.invoke(app, ["recommend", "--model", str(model), "--user", "1", "--top", "2"])
    assert result.exit_code == 0, result.output
    titles = [line for line in result.stdout.splitlines() if line.startswith("Recommended for user 1")]
    assert titles == [
        "Recommended for user 1 (joint RBM (user-based), ml-100k; score = P(picks it)·P(rates it ≥ 4 | picks it))"
    ]


def test_a_piped_progress_display_prints_a_plain_line_now_and_then() -> None:
    from rich.console import Console

    console = Console(file=__import__("io").StringIO(), width=40)
    with PlainProgress(console=console, every=0) as progress:
        task = progress.add_task("u1 · RBM joint: fit", total=4, note="")
        progress.update(task, note="epoch 12: train RMSE 0.8534 and a long tail of measures")
        progress.advance(task)
    assert console.file.getvalue().splitlines() == [
        "u1 · RBM joint: fit: 0/4 epoch 12: train RMSE 0.8534 and a long tail of measures (0:00:00)",
        "u1 · RBM joint: fit: 1/4 epoch 12: train RMSE 0.8534 and a long tail of measures (0:00:00)",
    ]  # whole, though far wider than the console's 40 columns
    quiet = Console(file=__import__("io").StringIO())
    with PlainProgress(console=quiet, every=None) as progress:
        progress.update(progress.add_task("epochs", total=2, note=""), completed=1)
    assert quiet.file.getvalue() == ""  # every=None: the command prints its own lines


def test_evaluate_prints_progress_lines_while_it_fits_when_piped(
    runner: CliRunner, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("recsys_rbm_cli.common.PLAIN_PROGRESS_SECONDS", 0.0)  # a line at every update, not every 10 s
    args = ["evaluate", "movielens", "--data-dir", str(data_dir), "--folds", "u1", "--models", "rbm", *TINY]
    result = runner.invoke(app, [*args, "--json-out", str(tmp_path / "e.json")])
    assert result.exit_code == 0, result.output
    fitting = [line for line in result.stdout.splitlines() if re.match(r"u1 · .+: fit: \d+/\d+ epoch \d+: ", line)]
    assert fitting and all("validation NDCG@10" in line or "RMSE" in line for line in fitting), result.stdout


# --- 5. info reads the default model like every other command --------------------------------------------


def test_info_without_an_argument_reads_the_default_model(runner: CliRunner, model: Path, models_folder: Path) -> None:
    models_folder.mkdir()
    line = one_error_line(runner.invoke(app, ["info"]))
    assert "movielens-ml-100k.safetensors does not exist; train one first or give its path: rbm-rec info PATH" in line
    assert "--model" not in line
    (models_folder / "movielens-ml-100k.safetensors").write_bytes(model.read_bytes())
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert f"file {models_folder / 'movielens-ml-100k.safetensors'}" in flat(result.stdout)


# --- 6. help that reads whole, and one meaning per option ------------------------------------------------


def every_command() -> list[list[str]]:
    """The path of every group and command of the app (``[]`` is ``rbm-rec`` itself)."""
    paths: list[list[str]] = []

    def visit(command, path: list[str]) -> None:
        paths.append(path)
        for name, child in getattr(command, "commands", {}).items():
            visit(child, [*path, name])

    visit(typer.main.get_command(app), [])
    return paths


@pytest.mark.parametrize("path", every_command(), ids=lambda path: " ".join(path) or "rbm-rec")
def test_help_shows_no_bool_type_no_braces_and_cuts_nothing(runner: CliRunner, path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    usage = next(line for line in result.stdout.splitlines() if "Usage:" in line)
    assert "<bool>" not in result.stdout and "{" not in usage and "…" not in result.stdout, result.stdout
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    for option in (param for param in command.params if param.param_type_name == "option" and not param.hidden):
        longest = max(option.opts, key=len)
        assert longest in result.stdout, f"{longest} is not shown whole"


def test_n_means_top_in_every_command() -> None:
    with_n = []
    for path in every_command():
        command = typer.main.get_command(app)
        for name in path:
            command = command.commands[name]
        for option in command.params:
            if "-n" in getattr(option, "opts", []):
                assert "--top" in option.opts, f"-n of 'rbm-rec {' '.join(path)}' is {option.opts}"
                with_n.append(" ".join(path))
    assert {"recommend", "similar", "explain", "interactive", "anomalies", "imagine"} <= set(with_n)


def test_imagine_counts_profiles_with_profiles_and_still_reads_its_former_n(runner: CliRunner, model: Path) -> None:
    args = ["imagine", "--model", str(model), "--likes", "star wars", "--json"]
    new = runner.invoke(app, [*args, "--profiles", "2", "-n", "3"])
    assert new.exit_code == 0, new.output
    import json

    data = json.loads(new.stdout)
    assert len(data["profiles"]) == 2
    former = runner.invoke(app, [*args, "--n", "2"])
    assert former.exit_code == 0 and json.loads(former.stdout)["profiles"] == data["profiles"]
    assert "note: --n is now --profiles" in former.stderr


def test_a_bad_value_names_the_option_and_is_a_usage_error(runner: CliRunner) -> None:
    for command in (["train", "mnist"], ["train", "movielens"]):
        result = runner.invoke(app, [*command, "--learning-rate", "-1"])
        line = one_error_line(result)
        assert result.exit_code == 2 and "--learning-rate" in line and "learning_rate" not in line, line


# --- 8. the quickstart in the README ------------------------------------------------------------------------


def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def test_the_quickstart_clones_makes_a_virtual_environment_and_installs_only_the_tool() -> None:
    quickstart = readme_section("Quickstart")
    commands = re.search(r"```bash\n(.*?)```", quickstart, re.DOTALL).group(1)
    steps = [line.split("#")[0].strip() for line in commands.splitlines() if line.strip()]
    assert steps[0].startswith("git clone ") and steps[1].startswith("cd ")
    assert any(re.match(r"python3? -m venv \.venv", step) for step in steps)
    assert any(step in (". .venv/bin/activate", "source .venv/bin/activate") for step in steps)
    installs = [step for step in steps if "pip install" in step]
    tool = next(step for step in installs if "-e ." in step or "install ." in step)
    assert "[dev]" not in tool and steps.index(tool) < steps.index("rbm-rec train movielens")
    assert "minutes" in quickstart and "CPU" in quickstart  # how long the first training takes
    assert "python -m pytest -q" in README.read_text()  # the test command CI runs stays in the README


# --- 9. the small things ------------------------------------------------------------------------------------


def test_counts_and_scores_read_alike_everywhere(runner: CliRunner, model: Path, tmp_path: Path) -> None:
    assert [plural(1, "user"), plural(2, "user"), plural(1500, "rating")] == ["1 user", "2 users", "1,500 ratings"]
    assert [score_text(0.05), score_text(0.0745), score_text(0.7)] == ["0.0500", "0.0745", "0.7000"]
    result = runner.invoke(app, ["recommend", "--model", str(model), "--user", "1", "--top", "5"])
    assert result.exit_code == 0, result.output
    rows = [line.split("│") for line in result.stdout.splitlines() if re.match(r"│ +\d+ │", line)]
    scores = [row[4].strip() for row in rows]
    assert len(scores) == 5 and all(re.fullmatch(r"\d\.\d{4}", score) for score in scores), scores
    users = tmp_path / "users.txt"
    users.write_text("1\n")
    written = runner.invoke(
        app,
        ["recommend", "--model", str(model), "--users", str(users), "--output", str(tmp_path / "r.csv"), "--top", "2"],
    )
    assert written.exit_code == 0, written.output
    assert "Wrote 2 recommendations for 1 user to" in flat(written.stdout)


def test_info_reports_the_training_time_the_summary_reported(runner: CliRunner, data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "timed.safetensors"
    trained = runner.invoke(app, ["train", "movielens", "--data-dir", str(data_dir), "--output", str(path), *TINY])
    assert trained.exit_code == 0, trained.output
    summary = re.search(r"^time +(.+?)\s*$", trained.stdout, re.MULTILINE).group(1)
    info = runner.invoke(app, ["info", str(path)])
    assert info.exit_code == 0, info.output
    assert re.search(r"^training time +(.+?)\s*$", info.stdout, re.MULTILINE).group(1) == summary
