#!/bin/sh
# Container entrypoint: make sure the TensorRT engines match this device (a cache check that
# takes seconds; a build of several minutes on first start, after a JetPack/TensorRT update or
# a new model), then run the given platewatch command (default: the service).
set -eu

if [ "${1:-run}" = "run" ]; then
    shift 2>/dev/null || true
    platewatch build-engines \
        --cache-dir "${PLATEWATCH_ENGINES}" \
        --precision "${PLATEWATCH_PRECISION}" \
        ${PLATEWATCH_CALIB_DIR:+--calib-dir "$PLATEWATCH_CALIB_DIR"}
    exec platewatch run --config "${PLATEWATCH_CONFIG}" "$@"
fi
# Anything else: a platewatch subcommand (doctor, build-engines, check-config, ...).
exec platewatch "$@"
