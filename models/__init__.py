"""SQLModel tables. Importing this package registers every table on SQLModel.metadata."""

from models import article, health, verification  # noqa: F401  (their tables register)
from models.case import Case, CaseEvent, CaseMessage, CasePause, SurveyAnswer, case_number
from models.directory import BotChannel, Organisation, Person
from models.oncall import OnCallOverride, Page, RotationRecord
from models.outbox import OutboxMessage
from models.worker import ChannelPace, SweepMark

__all__ = [
    "BotChannel",
    "Case",
    "CaseEvent",
    "CaseMessage",
    "CasePause",
    "ChannelPace",
    "OnCallOverride",
    "Organisation",
    "OutboxMessage",
    "Page",
    "Person",
    "RotationRecord",
    "SurveyAnswer",
    "SweepMark",
    "case_number",
]
