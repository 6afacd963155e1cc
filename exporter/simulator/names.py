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

# The 11 node types of the SDK (0.16), in the order a typical pipeline runs them.
NODE_TYPES: tuple[str, ...] = (
    "source_script",
    "operator_translator",
    "operator_normalizer",
    "operator_phoneme_injector",
    "operator_generator",
    "validator_pronunciation",
    "operator_pronunciation_corrector",
    "validator_error_rate",
    "validator_naturalness",
    "validator_noise",
    "sink_preview",
)

# How a workflow's ``name`` was set, with how often each happens.
NAME_SOURCES: tuple[tuple[str, float], ...] = (
    ("user", 0.75),
    ("generated", 0.2),
    ("placeholder", 0.05),
)

LOCALES: tuple[str, ...] = ("en-US", "de-DE", "es-MX", "fr-FR", "ja-JP", "it-IT")

USER_PAUSE = "user"
# Why runs pause, with the share of pauses each accounts for; all but ``user`` are automatic.
PAUSE_REASONS: tuple[tuple[str, float], ...] = (
    (USER_PAUSE, 0.35),
    ("provider_rate_limited", 0.25),
    ("provider_outage", 0.2),
    ("node_timeout", 0.12),
    ("provider_billing", 0.08),
)
# The customer-facing ``pause_error`` of an automatic pause.
PAUSE_ERRORS: dict[str, str] = {
    "provider_outage": "The voice provider is unavailable; the run resumes when it recovers.",
    "provider_rate_limited": "The voice provider is rate limiting requests; retrying shortly.",
    "provider_billing": "The provider account needs attention (billing); the run is on hold.",
    "node_timeout": "A node did not finish within its time limit; the run is on hold.",
}

FAILURE_REASONS: tuple[str, ...] = (
    "upstream timed out after 30s",
    "voice model returned HTTP 503",
    "validator score 0.41 below threshold 0.60",
    "input script is empty",
    "quota exceeded for provider",
    "unexpected end of audio stream",
)
