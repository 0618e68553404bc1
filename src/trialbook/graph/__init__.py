"""Parameters and a lazy step graph: ``parameter()``, ``@ex`` steps, ``compute()`` = one trial.

The package's modules, each with one job:

* :mod:`~trialbook.graph.experiment`: :class:`Experiment`, the user's API (parameters,
  decorators, trials, scripts);
* :mod:`~trialbook.graph.nodes`: :class:`Parameter`, :class:`Step` and :class:`Node`, the
  lazy graph;
* :mod:`~trialbook.graph.history`: reading trials back (history, metrics, persisted values,
  diffs);
* :mod:`~trialbook.graph.remote`: running a trial's graph outside this process;
* :mod:`~trialbook.graph.script`: a script as one trial (``trialbook run``);
* :mod:`~trialbook.graph.files`: snapshot digests and the plain files of directory stores.

Examples
--------
>>> from trialbook.graph import Experiment
>>> ex = Experiment("doc_graph_package", backend="sqlite:///:memory:")
>>> a = ex.parameter("a", default=2)
>>> @ex.result
... def square(x):
...     return x * x
>>> square(a).compute(seed=0)
4
>>> ex.close()
"""

from trialbook.graph.experiment import Experiment
from trialbook.graph.history import TrialDiff
from trialbook.graph.nodes import Node, Parameter, Step

__all__ = ["Experiment", "Node", "Parameter", "Step", "TrialDiff"]
