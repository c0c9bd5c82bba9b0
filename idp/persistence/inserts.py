"""A row inserted by one plain INSERT, and its object in the session as if loaded.

On the sign-in path the ORM's unit of work cost more than the statements it emits: a new
object waits in the session, then the flush sorts, batches and writes it with whatever
else is pending (docs/performance.md, seventh pass). ``insert_attached`` writes the row at
once, in the session's transaction, and puts an object of it in the session as a
persistent one: reading it loads nothing, and changing it later is an ordinary UPDATE at
the next flush, as for any loaded object.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import insert
from sqlalchemy.orm import Session, make_transient_to_detached

from .models import Base

ModelT = TypeVar("ModelT", bound=Base)


def insert_attached(session: Session, model: type[ModelT], **values: Any) -> ModelT:
    """INSERT one row of ``model`` with ``values`` and return its object, attached to
    ``session``. Every column with a default must be given (the object has to hold what
    the row holds); the others default to NULL."""
    statement, defaulted, others = _shape(model)
    missing = defaulted - values.keys()
    if missing:
        raise ValueError(f"{model.__name__}: give {', '.join(sorted(missing))} (defaulted)")
    for key in others - values.keys():
        values[key] = None
    session.execute(statement, values)
    item = model(**values)
    make_transient_to_detached(item)
    session.add(item)
    return item


# Built once per model: building a statement costs about a third of running it
# (docs/performance.md, fourth pass).
_SHAPES: dict[type, tuple[Any, frozenset[str], frozenset[str]]] = {}


def _shape(model: type) -> tuple[Any, frozenset[str], frozenset[str]]:
    shape = _SHAPES.get(model)
    if shape is None:
        columns = model.__table__.columns
        defaulted = frozenset(c.key for c in columns
                              if c.default is not None or c.server_default is not None)
        others = frozenset(c.key for c in columns) - defaulted
        shape = _SHAPES[model] = (insert(model.__table__), defaulted, others)
    return shape
