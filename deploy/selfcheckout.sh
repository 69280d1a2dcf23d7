#!/bin/sh
# The `selfcheckout` command, installed by scripts/install as /usr/local/bin/selfcheckout.
# Run as root (sudo), it becomes the service user first, so every file it makes (the database, keys)
# belongs to the service that must write it; other users run it as themselves.
# LG_WD: lgpio (the GPIO backend `doctor` and `scanner-test` load) makes its pipes there, not in the
# caller's folder, which the service user may not write.
if [ "$(id -u)" = 0 ]; then
    HOME=@STATE@ LG_WD=@STATE@ exec setpriv --reuid=@USER@ --regid=@USER@ --init-groups -- \
        @VENV@/bin/selfcheckout "$@"
fi
exec @VENV@/bin/selfcheckout "$@"
