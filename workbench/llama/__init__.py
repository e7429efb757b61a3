"""Every llama.cpp call of workbench runs in a child process; this layer is the one place
that knows how.

- :mod:`~workbench.llama.process`: spawn (``python -m`` an entry point of this package),
  the pipe, the log file, death detection and its one-line message;
- :mod:`~workbench.llama.log`: reading llama.cpp's log (failure causes, KV and
  recurrent-state buffer sizes, what flash attention "auto" chose);
- :mod:`~workbench.llama.params`: settings as llama.cpp takes them (KV-cache type ids,
  load parameters, flash attention "auto", raw context parameters);
- :mod:`~workbench.llama.gen_worker`: the generation worker (one loaded model);
- :mod:`~workbench.llama.bench_worker`: the bench worker (llama-bench's method).

Importing this package is cheap: llama_cpp itself is imported only in the children.
"""
