"""The contract between a training Job's two containers (TrainingRun ``spec.trainer`` with the Job backend).

The pipeline's container (the pipelines image, the store's keys) and the trainer's (the team's image, no keys,
no API token) share two volumes and nothing else: ``INPUT`` (the pipeline writes the trainer's files, then
``READY``; or ``CANCEL`` when it ends without reaching its trainer step) and ``OUTPUT`` (the trainer writes the
contract's files and ``trainer.log``, then ``EXIT``, its command's status). ``reconcile.jobs`` renders both
containers; ``lathe_pipelines.steps.handover`` is the pipeline's side; ``WRAPPER`` is the trainer's.
"""

from __future__ import annotations

INPUT, OUTPUT = "/lathe/input", "/lathe/output"
INPUT_ENV, OUTPUT_ENV = "LATHE_TRAINER_INPUT", "LATHE_TRAINER_OUTPUT"  # in the pipeline's container
READY, CANCEL, EXIT, LOG = "ready", "cancel", "exit", "trainer.log"

# The trainer container's command (POSIX sh, as KFP's container step also needs): wait for the input (or a
# cancel), run the team's command ("$@") in its working directory with its output in trainer.log, record the
# exit status, then show the log on stdout (kubectl logs -c trainer). It exits 0: the pipeline judges.
WRAPPER = r"""
in="$LATHE_INPUT"; out="$LATHE_OUTPUT"
until [ -e "$in/ready" ]; do [ -e "$in/cancel" ] && exit 0; sleep 1; done
if [ -n "$LATHE_WORKING_DIR" ]; then cd "$LATHE_WORKING_DIR" || { echo 127 > "$out/exit"; exit 0; }; fi
"$@" > "$out/trainer.log" 2>&1
echo $? > "$out/exit"
while IFS= read -r line || [ -n "$line" ]; do printf '%s\n' "$line"; done < "$out/trainer.log"
"""
