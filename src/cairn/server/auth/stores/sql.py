"""Users, API tokens and permissions in the tracking database (tables of migration 0005).

It shares the tracking store's engine. The lookups the server makes on every request (a token,
a run's experiment and the caller's permission on it) are one indexed query each.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from cairn.errors import AlreadyExistsError, InvalidParameterError, NotFoundError
from cairn.server.auth import passwords
from cairn.server.auth.entities import Permission, Token, User, check_username
from cairn.tracking.stores.sql import schema as t
from cairn.tracking.stores.sql.engine import EngineStore

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["AuthStore"]

_USER_COLUMNS = (t.users.c.user_id, t.users.c.username, t.users.c.is_admin, t.users.c.creation_time)


def _now() -> int:
    return int(time.time() * 1000)


def _int_id(value: str) -> int | None:
    """A numeric id from the wire, or None (no row can have it)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 <= number < 2**31 and str(number) == value.strip() else None


def _user(row: Any) -> User:
    return User(int(row.user_id), row.username, bool(row.is_admin), int(row.creation_time))


class AuthStore(EngineStore):
    """Users, tokens and permissions over an engine whose database is at the head revision."""

    # -- users --------------------------------------------------------------------------------

    def _user_row(self, conn: Connection, username: str) -> Any:
        row = conn.execute(sa.select(*_USER_COLUMNS).where(t.users.c.username == username)).first()
        if row is None:
            raise NotFoundError(f"User {username!r} does not exist")
        return row

    def create_user(self, username: str, password: str, is_admin: bool = False) -> User:
        check_username(username)
        passwords.check_password_strength(password)
        password_hash = passwords.hash_password(password)
        with self._tx() as conn:
            taken = conn.execute(
                sa.select(t.users.c.user_id).where(t.users.c.username == username)
            ).first()
            if taken is not None:
                raise AlreadyExistsError(f"User {username!r} already exists")
            now = _now()
            user_id = conn.execute(
                sa.insert(t.users)
                .values(
                    username=username,
                    password_hash=password_hash,
                    is_admin=is_admin,
                    creation_time=now,
                )
                .returning(t.users.c.user_id)
            ).scalar_one()
        return User(int(user_id), username, is_admin, now)

    def get_user(self, username: str) -> User:
        with self._read() as conn:
            return _user(self._user_row(conn, username))

    def list_users(self) -> list[User]:
        with self._read() as conn:
            rows = conn.execute(sa.select(*_USER_COLUMNS).order_by(t.users.c.username)).all()
        return [_user(row) for row in rows]

    def count_admins(self) -> int:
        with self._read() as conn:
            count = conn.execute(
                sa.select(sa.func.count()).select_from(t.users).where(t.users.c.is_admin)
            ).scalar_one()
        return int(count)

    def delete_user(self, username: str) -> None:
        with self._tx() as conn:
            row = self._user_row(conn, username)
            if row.is_admin:
                self._keep_an_admin(conn, row.user_id, "delete")
            conn.execute(sa.delete(t.users).where(t.users.c.user_id == row.user_id))

    def update_password(self, username: str, password: str) -> None:
        passwords.check_password_strength(password)
        password_hash = passwords.hash_password(password)
        with self._tx() as conn:
            row = self._user_row(conn, username)
            conn.execute(
                sa.update(t.users)
                .where(t.users.c.user_id == row.user_id)
                .values(password_hash=password_hash)
            )

    def set_admin(self, username: str, is_admin: bool) -> None:
        with self._tx() as conn:
            row = self._user_row(conn, username)
            if row.is_admin and not is_admin:
                self._keep_an_admin(conn, row.user_id, "demote")
            conn.execute(
                sa.update(t.users).where(t.users.c.user_id == row.user_id).values(is_admin=is_admin)
            )

    def _keep_an_admin(self, conn: Connection, user_id: int, action: str) -> None:
        others = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.users)
            .where(t.users.c.is_admin, t.users.c.user_id != user_id)
        ).scalar_one()
        if not others:
            raise InvalidParameterError(
                f"Cannot {action} the last admin: make another user admin first"
            )

    def check_password(self, username: str, password: str) -> User | None:
        """The user whose password this is, or None (unknown user or wrong password)."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(*_USER_COLUMNS, t.users.c.password_hash).where(
                    t.users.c.username == username
                )
            ).first()
        if row is None:
            # Spend the same time as a real check, so timing does not tell which users exist.
            passwords.verify_password(_dummy_hash(), password)
            return None
        if not passwords.verify_password(row.password_hash, password):
            return None
        if passwords.needs_rehash(row.password_hash):
            with self._tx() as conn:
                conn.execute(
                    sa.update(t.users)
                    .where(t.users.c.user_id == row.user_id)
                    .values(password_hash=passwords.hash_password(password))
                )
        return _user(row)

    # -- tokens -------------------------------------------------------------------------------

    def create_token(self, username: str, name: str = "") -> tuple[Token, str]:
        """A new token for ``username``: its record, and the secret (shown once, never kept)."""
        if len(name) > 256:
            raise InvalidParameterError("Token name too long: use at most 256 characters")
        secret = passwords.new_token()
        with self._tx() as conn:
            user_id = self._user_row(conn, username).user_id
            now = _now()
            token_id = conn.execute(
                sa.insert(t.api_tokens)
                .values(
                    user_id=user_id,
                    name=name,
                    token_hash=passwords.hash_token(secret),
                    creation_time=now,
                )
                .returning(t.api_tokens.c.token_id)
            ).scalar_one()
        return Token(int(token_id), username, name, now, None), secret

    def list_tokens(self, username: str | None = None) -> list[Token]:
        tok, users = t.api_tokens, t.users
        query = (
            sa.select(
                tok.c.token_id,
                users.c.username,
                tok.c.name,
                tok.c.creation_time,
                tok.c.revoked_time,
            )
            .join(users, users.c.user_id == tok.c.user_id)
            .order_by(tok.c.token_id)
        )
        with self._read() as conn:
            if username is not None:
                self._user_row(conn, username)
                query = query.where(users.c.username == username)
            rows = conn.execute(query).all()
        return [
            Token(int(r.token_id), r.username, r.name, int(r.creation_time), r.revoked_time)
            for r in rows
        ]

    def token_owner(self, token_id: int) -> str | None:
        with self._read() as conn:
            owner = conn.execute(
                sa.select(t.users.c.username)
                .join(t.api_tokens, t.api_tokens.c.user_id == t.users.c.user_id)
                .where(t.api_tokens.c.token_id == token_id)
            ).scalar()
        return None if owner is None else str(owner)

    def revoke_token(self, token_id: int) -> None:
        with self._tx() as conn:
            found = conn.execute(
                sa.update(t.api_tokens)
                .where(t.api_tokens.c.token_id == token_id, t.api_tokens.c.revoked_time.is_(None))
                .values(revoked_time=_now())
                .returning(t.api_tokens.c.token_id)
            ).first()
            if found is None:
                exists = conn.execute(
                    sa.select(t.api_tokens.c.token_id).where(t.api_tokens.c.token_id == token_id)
                ).first()
                if exists is None:
                    raise NotFoundError(f"Token {token_id} does not exist")

    def user_for_token(self, secret: str) -> User | None:
        """The owner of a live (not revoked) token, or None."""
        if not secret.startswith(passwords.TOKEN_PREFIX) or len(secret) > 200:
            return None
        with self._read() as conn:
            row = conn.execute(
                sa.select(*_USER_COLUMNS)
                .join(t.api_tokens, t.api_tokens.c.user_id == t.users.c.user_id)
                .where(
                    t.api_tokens.c.token_hash == passwords.hash_token(secret),
                    t.api_tokens.c.revoked_time.is_(None),
                )
            ).first()
        return None if row is None else _user(row)

    # -- what a request names -----------------------------------------------------------------

    def experiment_of_run(self, run_id: str) -> str | None:
        with self._read() as conn:
            found = conn.execute(
                sa.select(t.runs.c.experiment_id).where(t.runs.c.run_uuid == run_id)
            ).scalar()
        return None if found is None else str(found)

    def experiment_of_logged_model(self, model_id: str) -> str | None:
        with self._read() as conn:
            found = conn.execute(
                sa.select(t.logged_models.c.experiment_id).where(
                    t.logged_models.c.model_id == model_id
                )
            ).scalar()
        return None if found is None else str(found)

    def experiment_by_name(self, name: str) -> str | None:
        with self._read() as conn:
            found = conn.execute(
                sa.select(t.experiments.c.experiment_id).where(t.experiments.c.name == name)
            ).scalar()
        return None if found is None else str(found)

    def experiment_exists(self, experiment_id: str) -> bool:
        number = _int_id(experiment_id)
        if number is None:
            return False
        with self._read() as conn:
            found = conn.execute(
                sa.select(t.experiments.c.experiment_id).where(
                    t.experiments.c.experiment_id == number
                )
            ).first()
        return found is not None

    # -- permissions --------------------------------------------------------------------------

    def experiment_permission(self, user_id: int, experiment_id: str) -> Permission | None:
        """The permission granted to the user on the experiment, or None if none was granted."""
        number = _int_id(experiment_id)
        if number is None:
            return None
        ep = t.experiment_permissions
        with self._read() as conn:
            found = conn.execute(
                sa.select(ep.c.permission).where(
                    ep.c.experiment_id == number, ep.c.user_id == user_id
                )
            ).scalar()
        return None if found is None else Permission[found]

    def model_permission(self, user_id: int, name: str) -> Permission | None:
        mp, rm = t.model_permissions, t.registered_models
        with self._read() as conn:
            found = conn.execute(
                sa.select(mp.c.permission)
                .join(rm, rm.c.registered_model_id == mp.c.registered_model_id)
                .where(rm.c.name == name, mp.c.user_id == user_id)
            ).scalar()
        return None if found is None else Permission[found]

    def experiment_permissions_of(self, user_id: int) -> dict[str, Permission]:
        ep = t.experiment_permissions
        with self._read() as conn:
            rows = conn.execute(
                sa.select(ep.c.experiment_id, ep.c.permission).where(ep.c.user_id == user_id)
            ).all()
        return {str(r.experiment_id): Permission[r.permission] for r in rows}

    def model_permissions_of(self, user_id: int) -> dict[str, Permission]:
        mp, rm = t.model_permissions, t.registered_models
        with self._read() as conn:
            rows = conn.execute(
                sa.select(rm.c.name, mp.c.permission)
                .join(rm, rm.c.registered_model_id == mp.c.registered_model_id)
                .where(mp.c.user_id == user_id)
            ).all()
        return {r.name: Permission[r.permission] for r in rows}

    def _experiment_key(self, conn: Connection, experiment_id: str) -> int:
        number = _int_id(experiment_id)
        found = (
            None
            if number is None
            else conn.execute(
                sa.select(t.experiments.c.experiment_id).where(
                    t.experiments.c.experiment_id == number
                )
            ).first()
        )
        if found is None:
            raise NotFoundError(f"Experiment with id {experiment_id!r} does not exist")
        return int(found.experiment_id)

    def _model_key(self, conn: Connection, name: str) -> int:
        rm = t.registered_models
        found = conn.execute(sa.select(rm.c.registered_model_id).where(rm.c.name == name)).scalar()
        if found is None:
            raise NotFoundError(f"Registered model {name!r} does not exist")
        return int(found)

    def _grants(
        self, conn: Connection, experiment_id: str | None, model_name: str | None
    ) -> tuple[sa.Table, sa.Column[Any], int, str]:
        """The permission table of an experiment or a registered model, its key column, the
        key of the one named (NotFoundError if it does not exist) and how messages name it."""
        if experiment_id is not None:
            ep = t.experiment_permissions
            key = self._experiment_key(conn, experiment_id)
            return ep, ep.c.experiment_id, key, f"experiment {experiment_id}"
        assert model_name is not None
        mp = t.model_permissions
        key = self._model_key(conn, model_name)
        return mp, mp.c.registered_model_id, key, f"registered model {model_name!r}"

    def _set_permission(
        self,
        username: str,
        permission: Permission,
        create: bool,
        experiment_id: str | None = None,
        model_name: str | None = None,
    ) -> None:
        with self._tx() as conn:
            table, column, key, what = self._grants(conn, experiment_id, model_name)
            user_id = self._user_row(conn, username).user_id
            where = (column == key, table.c.user_id == user_id)
            exists = conn.execute(sa.select(table.c.permission).where(*where)).first() is not None
            if create and exists:
                raise AlreadyExistsError(f"User {username!r} already has a permission on {what}")
            if not create and not exists:
                raise NotFoundError(f"User {username!r} has no permission on {what}")
            if exists:
                conn.execute(sa.update(table).where(*where).values(permission=permission.name))
            else:
                conn.execute(
                    sa.insert(table).values(
                        {column.name: key, "user_id": user_id, "permission": permission.name}
                    )
                )

    def set_experiment_permission(
        self, experiment_id: str, username: str, permission: Permission, *, create: bool
    ) -> None:
        """Grant (``create``: refuse if one exists) or change (refuse if none) a permission."""
        self._set_permission(username, permission, create, experiment_id=experiment_id)

    def set_model_permission(
        self, name: str, username: str, permission: Permission, *, create: bool
    ) -> None:
        self._set_permission(username, permission, create, model_name=name)

    def grant_creator(
        self, user_id: int, *, experiment_id: str | None = None, model_name: str | None = None
    ) -> None:
        """MANAGE for whoever just created an experiment or registered model."""
        with self._tx() as conn:
            table, column, key, _ = self._grants(conn, experiment_id, model_name)
            conn.execute(sa.delete(table).where(column == key, table.c.user_id == user_id))
            conn.execute(
                sa.insert(table).values(
                    {column.name: key, "user_id": user_id, "permission": Permission.MANAGE.name}
                )
            )

    def _get_permission(
        self, username: str, experiment_id: str | None = None, model_name: str | None = None
    ) -> Permission:
        with self._read() as conn:
            table, column, key, what = self._grants(conn, experiment_id, model_name)
            user_id = self._user_row(conn, username).user_id
            found = conn.execute(
                sa.select(table.c.permission).where(column == key, table.c.user_id == user_id)
            ).scalar()
        if found is None:
            raise NotFoundError(f"User {username!r} has no permission on {what}")
        return Permission[found]

    def get_experiment_permission(self, experiment_id: str, username: str) -> Permission:
        return self._get_permission(username, experiment_id=experiment_id)

    def get_model_permission(self, name: str, username: str) -> Permission:
        return self._get_permission(username, model_name=name)

    def _delete_permission(
        self, username: str, experiment_id: str | None = None, model_name: str | None = None
    ) -> None:
        with self._tx() as conn:
            table, column, key, what = self._grants(conn, experiment_id, model_name)
            user_id = self._user_row(conn, username).user_id
            gone = conn.execute(
                sa.delete(table).where(column == key, table.c.user_id == user_id)
            ).rowcount
        if not gone:
            raise NotFoundError(f"User {username!r} has no permission on {what}")

    def delete_experiment_permission(self, experiment_id: str, username: str) -> None:
        self._delete_permission(username, experiment_id=experiment_id)

    def delete_model_permission(self, name: str, username: str) -> None:
        self._delete_permission(username, model_name=name)


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(passwords.hash_password("not a password anyone has"))
    return _DUMMY[0]
