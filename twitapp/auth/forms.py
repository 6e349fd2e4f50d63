"""The sign-in and sign-out forms (Flask-WTF: each carries a CSRF token)."""

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length


class SignInForm(FlaskForm):
    name = StringField("Operator", validators=[DataRequired("Type your operator name."), Length(max=50)])
    password = PasswordField("Password", validators=[DataRequired("Type your password."), Length(max=1000)])


class SignOutForm(FlaskForm):
    """A button; the form only carries its CSRF token."""
