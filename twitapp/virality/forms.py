"""The virality page's form, and the models page's training form."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, TextAreaField
from wtforms.validators import NumberRange, Optional


class ViralityForm(FlaskForm):
    """A post to score, and optionally the stored account it would come from (its history counts)."""

    text = TextAreaField("Text of a post")
    username = SelectField("Posted by", choices=[], validate_choice=False)
    media = BooleanField("With a photo or video")


class TrainViralityForm(FlaskForm):
    """The question a virality challenger answers: more than how many likes (blank: the champion's)."""

    threshold = IntegerField(
        "More than how many likes?",
        validators=[Optional(), NumberRange(min=0, message="The number of likes is a whole number, 0 or more.")],
    )
