"""The request bodies, with their limits: what a client may ask for, checked before any model runs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_WORDS = 1000  # words a sample request asks for, or a score request sends
MAX_CHARS = 64  # characters of a word, prefix, suffix or substring
MAX_PATTERN = 200  # characters of a regular expression
MAX_TRIES = 1_000_000  # words drawn, or prefixes a search expands: a bound on one request's work
MAX_BODY = 64 * 1024  # bytes of a request body
MAX_LABELS = 1000  # label names in one sample request

Word = Field(default=None, max_length=MAX_CHARS)
ScoredWord = Annotated[str, StringConstraints(max_length=MAX_CHARS)]
LabelName = Annotated[str, StringConstraints(max_length=200)]


class Request(BaseModel):
    """Unknown fields are errors, and no type is coerced: "5" is not 5."""

    model_config = ConfigDict(extra="forbid", strict=True)

    run: str | None = Field(default=None, max_length=200, description="a name /api/runs lists (default: the first)")


class SampleRequest(Request):
    """POST /api/sample: n and every option of `makemore sample`, by Run.sample's names; None: the run's own."""

    n: int | None = Field(default=None, ge=1, le=MAX_WORDS, description="how many words (default: the run's)")
    temperature: float | None = Field(default=None, gt=0, le=100)
    top_k: int | None = Field(default=None, ge=1)
    top_p: float | None = Field(default=None, gt=0, le=1)
    prefix: str | None = Word
    suffix: str | None = Word
    contains: str | None = Word
    regex: str | None = Field(default=None, max_length=MAX_PATTERN)
    match: str | None = Field(default=None, max_length=MAX_PATTERN)
    min_length: int | None = Field(default=None, ge=0, le=MAX_CHARS)
    max_length: int | None = Field(default=None, ge=1, le=MAX_CHARS)
    novel: bool | None = None
    unique: bool | None = None
    tries: int | None = Field(default=None, ge=1, le=MAX_TRIES)
    constrain: Literal["mask", "reject"] | None = None
    most_likely: bool | None = None
    budget: int | None = Field(default=None, ge=1, le=MAX_TRIES)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    label: LabelName | Annotated[list[LabelName], Field(max_length=MAX_LABELS)] | None = Field(
        default=None, description="a label name, a list of names, or \"all\" (labelled runs)")

    def options(self) -> dict:
        """Run.sample's keyword options: those given, label only when given (unlabelled runs take none)."""
        out = self.model_dump(exclude={"run", "n", "label"}, exclude_none=True)
        if self.label is not None:
            out["label"] = self.label
        return out


class ScoreRequest(Request):
    """POST /api/score: words to score under one run."""

    words: list[ScoredWord] = Field(min_length=1, max_length=MAX_WORDS)
    label: LabelName | None = Field(default=None, description="score under this label (labelled runs)")
    labels: bool = Field(default=False, description="also each word's probability under every label")
    skip_unknown: bool = Field(default=False, description="leave out words the run cannot score instead of a 400")

