"""SQLModel tables. Importing this package registers every table on SQLModel.metadata."""

from models.case import Case, CaseEvent, CasePause, case_number
from models.directory import BotChannel, Organisation, Person
from models.outbox import OutboxMessage

__all__ = [
    "BotChannel",
    "Case",
    "CaseEvent",
    "CasePause",
    "Organisation",
    "OutboxMessage",
    "Person",
    "case_number",
]
