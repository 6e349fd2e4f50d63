"""``flask operator ...``: make operators, set their passwords, and make and revoke their API tokens."""

from __future__ import annotations

import secrets
import sys
from datetime import UTC, datetime

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from twitapp.auth.operators import (
    OPERATOR_NAME,
    TOKEN_PREFIX,
    find_operator,
    hash_password,
    new_session_token,
    token_digest,
)
from twitapp.extensions import db
from twitapp.models import ApiToken, Operator

MIN_PASSWORD, MAX_PASSWORD = 10, 1000  # the sign-in form takes at most MAX_PASSWORD characters

operator_cli = AppGroup("operator", help="Operators: the people who may change what this site stores.")


def _password(stdin: bool) -> str:
    """A new password: one line from standard input (for scripts), or typed twice at a hidden prompt."""
    if stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt="Type it again")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise click.ClickException(f"Use a password of {MIN_PASSWORD} to {MAX_PASSWORD} characters.")
    return password


def _operator(name: str) -> Operator:
    operator = find_operator(name)
    if operator is None:
        raise click.ClickException(f"There is no operator called {name!r} (`flask operator list` shows them).")
    return operator


password_stdin = click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")


@operator_cli.command("create")
@click.argument("name")
@password_stdin
def create(name: str, password_stdin: bool) -> None:
    """Make an operator called NAME, who can then sign in at /signin."""
    if not OPERATOR_NAME.fullmatch(name):
        raise click.ClickException("An operator name is 1 to 50 letters, digits, dots, dashes or underscores.")
    if find_operator(name) is not None:
        raise click.ClickException(f"An operator called {name!r} exists already.")
    operator = Operator(
        name=name, password_hash=hash_password(_password(password_stdin)), session_token=new_session_token()
    )
    db.session.add(operator)
    db.session.commit()
    click.echo(f"Made operator {name}; sign in at /signin.")


@operator_cli.command("password")
@click.argument("name")
@password_stdin
def set_password(name: str, password_stdin: bool) -> None:
    """Give NAME a new password; every session signed in with the old one ends."""
    operator = _operator(name)
    operator.password_hash = hash_password(_password(password_stdin))
    operator.session_token = new_session_token()
    db.session.commit()
    click.echo(
        f"New password set for {operator.name}; every session it had is signed out. Its API tokens stay "
        f"(`flask operator tokens {operator.name}` lists them)."
    )


@operator_cli.command("signout")
@click.argument("name")
def sign_out_everywhere(name: str) -> None:
    """End every session NAME has signed in (its API tokens stay; revoke those apart)."""
    operator = _operator(name)
    operator.session_token = new_session_token()
    db.session.commit()
    click.echo(f"Every session of {operator.name} is signed out.")


@operator_cli.command("list")
def list_operators() -> None:
    """Every operator, with when it last signed in and how many live API tokens it has."""
    live = sa.func.count(ApiToken.id).filter(ApiToken.revoked_at.is_(None))
    rows = db.session.execute(
        sa.select(Operator, live).outerjoin(ApiToken).group_by(Operator.id).order_by(sa.func.lower(Operator.name))
    ).all()
    if not rows:
        click.echo("No operators yet: `flask operator create NAME` makes one.")
    for operator, tokens in rows:
        last = f"{operator.signed_in_at:%Y-%m-%d %H:%M} UTC" if operator.signed_in_at else "never"
        click.echo(f"{operator.name}  last signed in: {last}  live API tokens: {tokens}")


@operator_cli.command("delete")
@click.argument("name")
@click.confirmation_option(prompt="Delete this operator and its API tokens?")
def delete(name: str) -> None:
    """Remove the operator NAME with its API tokens."""
    operator = _operator(name)
    db.session.execute(sa.delete(ApiToken).where(ApiToken.operator_id == operator.id))
    db.session.delete(operator)
    db.session.commit()
    click.echo(f"Deleted operator {name}.")


@operator_cli.command("token")
@click.argument("name")
@click.option("--label", required=True, help="What the token is for, to recognise it later (e.g. 'nightly refresh').")
def make_token(name: str, label: str) -> None:
    """Make an API token for NAME. It is shown this once; only its hash is kept."""
    operator = _operator(name)
    label = label.strip()
    if not label or len(label) > 100:
        raise click.ClickException("A token's label is 1 to 100 characters.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(operator_id=operator.id, name=label, token_hash=token_digest(token))
    db.session.add(row)
    db.session.commit()
    click.echo(f"API token {row.id} ({label}) for {operator.name}; it is not shown again:", err=True)
    click.echo(token)


@operator_cli.command("tokens")
@click.argument("name")
def list_tokens(name: str) -> None:
    """NAME's API tokens: id, label, when made and last used, and whether revoked."""
    operator = _operator(name)
    rows = db.session.scalars(sa.select(ApiToken).where(ApiToken.operator_id == operator.id).order_by(ApiToken.id))
    shown = False
    for row in rows:
        shown = True
        used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
        state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "live"
        click.echo(f"{row.id:>4}  {row.name}  made {row.created_at:%Y-%m-%d %H:%M}  last used {used}  {state}")
    if not shown:
        click.echo(f"{operator.name} has no API tokens.")


@operator_cli.command("revoke")
@click.argument("token_id", type=click.IntRange(1, 2**31 - 1))
def revoke(token_id: int) -> None:
    """Revoke the API token TOKEN_ID (from `flask operator tokens NAME`): it is refused from now on."""
    row = db.session.get(ApiToken, token_id)
    if row is None:
        raise click.ClickException(f"There is no API token {token_id}.")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        db.session.commit()
    click.echo(f"API token {token_id} ({row.name}) is revoked.")
