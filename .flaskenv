# Read by every `flask` command (python-dotenv): which app the commands are for, so `flask operator create
# NAME` works as typed, here and in `heroku run`.
FLASK_APP=twitapp
