"""Hyper-parameter search: a point is ``{dotted key: value}``; algorithms pick points,
schedulers stop running trials. An engine (:mod:`.engines`, ``search.engine``) drives the
search; only its module knows its library and documents: the monitor, the live runs and the
package's algorithms read the plain :class:`~.engines.protocol.Attempt` records of its store."""
