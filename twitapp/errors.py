"""The one base class of every failure meant for a person.

An error of this kind carries a message that says what went wrong and what to do about it, written for
whoever asked (on a page, from the API or the command line). The job runner reports such a failure as it
is and logs nothing; any other exception is a bug, logged in full and reported as unexpected. So a
capability that adds a kind of failure subclasses this and the runner needs no list of them.
"""


class UserError(Exception):
    """A failure whose message is meant for the person who asked."""
