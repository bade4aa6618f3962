"""The flows that Prefect tests of their own behaviour need (one file each, next to this
one), served together by one process per test worker (``SharedServer.serve`` in
``tests/support/prefect.py``), each as the deployment ``served``. Serving each in a process
of its own cost every such test a process importing Prefect (and its forkserver importing
it again), then its stop: seconds of CPU and of waiting each.

Run as ``python served_flows.py``, as ``LocalPrefect.serve_flows`` runs a flows file; its
folder is then first on the path, so the flow files import by their names.
"""

from __future__ import annotations

from enum_parameter_flow import release
from literal_answer_flow import literal_answer
from nested_secret_flow import nested_secret
from prefect import serve
from retried_flow import retry_pause
from two_approvals_flow import two_approvals

#: the deployment name of every flow served here (``SERVED_NAME`` in conftest.py, as is
#: their number)
NAME = "served"
FLOWS = (release, literal_answer, nested_secret, retry_pause, two_approvals)

if __name__ == "__main__":
    serve(*(f.to_deployment(name=NAME) for f in FLOWS))
