"""Readable, deterministic names for the simulated workspace."""

from __future__ import annotations

from typing import NamedTuple

WORKFLOW_NAMES: tuple[str, ...] = (
    "nightly-etl",
    "invoice-ocr",
    "podcast-tts-en",
    "support-ivr-de",
    "audiobook-chapters",
    "news-digest-tts",
    "dubbing-es-mx",
    "voicemail-transcribe",
    "catalog-sync",
    "weekly-sales-report",
    "lead-enrichment",
    "subtitle-translate",
    "qa-naturalness-audit",
    "onboarding-voiceover",
    "price-scraper",
    "churn-scoring",
    "doc-summaries",
    "ad-voiceover-fr",
    "meeting-notes",
    "faq-audio-refresh",
    "elearning-narration",
    "product-feed-export",
    "call-center-qa",
    "newsletter-tts-ja",
    "pronunciation-lexicon-sync",
    "radio-spots-it",
    "game-dialogue-batch",
    "accessibility-readout",
)

DESCRIPTIONS: tuple[str | None, ...] = (
    None,
    "Scheduled batch pipeline.",
    "Generates narrated audio from the latest scripts.",
    "Translates, voices and validates new content.",
    "Pulls source documents, extracts text and publishes a summary.",
    None,
    "Owned by the content team; pages on failure.",
)


def workflow_name(index: int) -> str:
    """``nightly-etl``, ``invoice-ocr``, ..., then ``nightly-etl-2``, ``invoice-ocr-2``, ..."""
    base = WORKFLOW_NAMES[index % len(WORKFLOW_NAMES)]
    round_ = index // len(WORKFLOW_NAMES)
    return base if round_ == 0 else f"{base}-{round_ + 1}"


class User(NamedTuple):
    key: int
    display_name: str | None
    email: str

    @property
    def user_name(self) -> str:
        """The API's ``user_name``: the display name, falling back to the email address."""
        return self.display_name or self.email


USERS: tuple[User, ...] = (
    User(1, "Alice Johnson", "alice.johnson@example.com"),
    User(2, "Bongani Dlamini", "bongani@example.com"),
    User(3, None, "jane.doe@example.com"),
    User(4, "Chen Wei", "chen.wei@example.com"),
    User(5, None, "scheduler-bot@example.com"),
)

NODE_TYPES: tuple[str, ...] = (
    "source_script",
    "operator_translator",
    "operator_normalizer",
    "operator_generator",
    "validator_error_rate",
    "validator_naturalness",
    "validator_noise",
    "sink_preview",
)

FAILURE_REASONS: tuple[str, ...] = (
    "upstream timed out after 30s",
    "voice model returned HTTP 503",
    "validator score 0.41 below threshold 0.60",
    "input script is empty",
    "quota exceeded for provider",
    "unexpected end of audio stream",
)
