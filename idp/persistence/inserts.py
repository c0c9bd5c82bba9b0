"""Rows inserted without the unit of work, written with the transaction's next statement.

On the sign-in path the ORM's unit of work cost more than the statements it emits: a new
object waits in the session, then the flush sorts, batches and writes it with whatever
else is pending (docs/performance-history.md, seventh pass). ``insert_attached`` puts an object
of the row in the session as a persistent one: reading it loads nothing, and changing it
later is an ordinary UPDATE at the next flush, as for any loaded object.

The row itself is *pending*: it is written just before the session's next statement,
flush or commit (:func:`write_behind` wires this up), so that whatever the transaction
does next finds it, as if it had been written at once. Pending rows cost no round trip of
their own on PostgreSQL: those of a commit go in one statement, and a statement run by
:func:`execute_with_pending` carries them in its own WITH clause (the login's audit event
and SSO session are written by the statement that stores its authorization code:
docs/performance-history.md, fifteenth pass). A rollback drops them with the rest.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import bindparam, event, insert
from sqlalchemy.orm import ORMExecuteState, Session, make_transient_to_detached, sessionmaker
from sqlalchemy.orm.attributes import instance_dict

from .models import Base

ModelT = TypeVar("ModelT", bound=Base)

# session.info key: the objects whose rows are not written yet, in order.
_PENDING = "idp.pending_rows"


def insert_attached(session: Session, model: type[ModelT], **values: Any) -> ModelT:
    """A row of ``model`` with ``values``, written with the session's next statement (see
    the module's docstring), and its object, attached to ``session``. Every column with a
    default must be given (the object has to hold what the row holds); the others default
    to NULL."""
    _, defaulted, others = _shape(model)
    missing = defaulted - values.keys()
    if missing:
        raise ValueError(f"{model.__name__}: give {', '.join(sorted(missing))} (defaulted)")
    for key in others - values.keys():
        values[key] = None
    # The object as a query would load it: its state filled in, without the
    # constructor's attribute events (a third of the cost of this function).
    item = model.__mapper__.class_manager.new_instance()
    instance_dict(item).update(values)
    make_transient_to_detached(item)
    session.add(item)
    session.info.setdefault(_PENDING, []).append(item)
    return item


def is_pending(session: Session, item: Base) -> bool:
    """Whether ``item``'s row is still to be written: until then, what its attributes
    hold is what will be written (no UPDATE needed)."""
    return any(pending is item for pending in session.info.get(_PENDING, ()))


def execute_with_pending(session: Session, statement, params: dict[str, Any]):
    """Execute ``statement`` (a Core INSERT, UPDATE or DELETE, whose bound parameters are
    not named ``w<n>_...``) with the session's pending rows written first: on
    PostgreSQL in the statement's own WITH clause, one round trip for all."""
    rows = session.info.pop(_PENDING, None)
    if not rows:
        return session.execute(statement, params)
    if session.get_bind().dialect.name == "sqlite":  # no INSERT inside a WITH clause
        _write(session, rows)
        return session.execute(statement, params)
    return session.execute(*_carrying(statement, rows, params))


def write_pending(session: Session) -> None:
    """Write the session's pending rows now (one statement on PostgreSQL)."""
    rows = session.info.pop(_PENDING, None)
    if rows:
        _write(session, rows)


class WriteBehindSession(Session):
    """The session class of :func:`write_behind`'s factories."""

    def begin_nested(self):
        # What is pending belongs before the savepoint: its rollback must not drop it.
        write_pending(self)
        return super().begin_nested()


def write_behind(session_factory: sessionmaker) -> None:
    """Write the pending rows of ``session_factory``'s sessions (of
    :class:`WriteBehindSession`) before each statement, flush and commit, and drop them
    when the transaction rolls back."""
    if not issubclass(session_factory.class_, WriteBehindSession):
        raise TypeError("write_behind needs a sessionmaker(class_=WriteBehindSession)")
    event.listen(session_factory, "do_orm_execute", _before_statement)
    event.listen(session_factory, "before_flush", lambda session, *_: write_pending(session))
    event.listen(session_factory, "before_commit", write_pending)
    event.listen(session_factory, "after_soft_rollback", _drop_pending)
    event.listen(session_factory, "after_transaction_end", _after_transaction)


def _before_statement(state: ORMExecuteState) -> None:
    if _PENDING in state.session.info:
        write_pending(state.session)


def _drop_pending(session: Session, _previous_transaction) -> None:
    # Only rows added since the last savepoint began can be pending (WriteBehindSession).
    session.info.pop(_PENDING, None)


def _after_transaction(session: Session, transaction) -> None:
    if transaction.parent is None:  # closed without a commit or a rollback
        session.info.pop(_PENDING, None)


def _write(session: Session, rows: list[Base]) -> None:
    # On the session's connection: not session.execute, which would come back here.
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        for row in rows:
            connection.execute(_shape(type(row))[0], _values(row))
        return
    *carried, last = rows
    connection.execute(*_carrying(_plain_insert(type(last), len(carried)), carried,
                                  _row_params([last], start=len(carried))))


def _values(row: Base) -> dict[str, Any]:
    state = instance_dict(row)
    return {column.key: state.get(column.key) for column in row.__table__.columns}


def _row_params(rows: list[Base], start: int = 0) -> dict[str, Any]:
    return {f"w{index}_{key}": value for index, row in enumerate(rows, start)
            for key, value in _values(row).items()}


# Built once per shape: building a statement costs about a third of running it
# (docs/performance-history.md, fourth pass).
_SHAPES: dict[type, tuple[Any, frozenset[str], frozenset[str]]] = {}
_PLAIN: dict[tuple[type, int], Any] = {}
_CARRYING: dict[tuple[Any, tuple[type, ...]], Any] = {}


def _shape(model: type) -> tuple[Any, frozenset[str], frozenset[str]]:
    shape = _SHAPES.get(model)
    if shape is None:
        columns = model.__table__.columns
        defaulted = frozenset(c.key for c in columns
                              if c.default is not None or c.server_default is not None)
        others = frozenset(c.key for c in columns) - defaulted
        shape = _SHAPES[model] = (insert(model.__table__), defaulted, others)
    return shape


def _plain_insert(model: type, index: int):
    """INSERT of one row of ``model`` from the parameters ``w<index>_<column>``."""
    statement = _PLAIN.get((model, index))
    if statement is None:
        table = model.__table__
        statement = _PLAIN[(model, index)] = insert(table).values(
            {c.key: bindparam(f"w{index}_{c.key}", type_=c.type) for c in table.columns})
    return statement


def _carrying(statement, rows: list[Base], params: dict[str, Any]):
    """``statement`` with the INSERT of ``rows`` in its WITH clause (PostgreSQL runs each
    one, referenced or not), and the parameters of both."""
    if not rows:
        return statement, params
    key = (statement, tuple(type(row) for row in rows))
    carrying = _CARRYING.get(key)
    if carrying is None:
        carrying = _CARRYING[key] = statement.add_cte(*(
            _plain_insert(model, index).cte(f"pending_{index}")
            for index, model in enumerate(key[1])))
    return carrying, {**_row_params(rows), **params}
