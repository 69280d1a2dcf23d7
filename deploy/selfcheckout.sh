#!/bin/sh
# The `selfcheckout` command, installed by scripts/install as /usr/local/bin/selfcheckout.
# Run as root (sudo), it becomes the service user first, so every file it makes (the database, keys)
# belongs to the service that must write it; other users run it as themselves.
if [ "$(id -u)" = 0 ]; then
    HOME=@STATE@ exec setpriv --reuid=@USER@ --regid=@USER@ --init-groups -- @VENV@/bin/selfcheckout "$@"
fi
exec @VENV@/bin/selfcheckout "$@"
