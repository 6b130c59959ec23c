"The loop's callbacks: every event in order, cancellation, state in the checkpoint, before_step/after_step around each named update."
import pytest, torch, torch.nn as nn
from medimb.core import ConfigError
from medimb.train import TrainLoop, Callback, CancelFit, CancelEpoch, CancelBatch, EVENTS

X = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))

class Trace(Callback):
    "Records (event, step, epoch) for every event."
    def __init__(self, order=0): self.order, self.seen = order, []
for _e in EVENTS: setattr(Trace, _e, lambda self, loop, e=_e: self.seen.append((e, loop.step, loop.epoch)))

class Raise(Callback):
    "Raises `exc` at `event` when the loop is at `step`."
    def __init__(self, event, exc, step): self.exc, self.at = exc, step; setattr(self, event, self.fire)
    def fire(self, loop):
        if loop.step == self.at: raise self.exc

def loop_with(*callbacks, steps=4, steps_per_epoch=2, **kw):
    torch.manual_seed(0); net = nn.Linear(2, 1)
    def step(loop, i):
        loss = net(X).pow(2).mean(); loop.update(loss); return dict(loss=loss.detach(), n=8)
    loop = TrainLoop(step, dict(net=net), dict(net=torch.optim.SGD(net.parameters(), lr=0.1)), steps_per_epoch, device='cpu',
                     progress=False, callbacks=list(callbacks), **kw)
    return loop.run(steps), net

BATCH = ['before_batch', 'before_step', 'after_step', 'after_batch']

def test_every_event_in_order():
    t = Trace(); loop, _ = loop_with(t)
    assert [e for e, *_ in t.seen] == ['before_fit', *(['before_epoch', *BATCH, *BATCH, 'after_epoch'] * 2), 'after_fit']
    assert [(s, ep) for e, s, ep in t.seen if e == 'after_epoch'] == [(2, 0), (4, 1)]     # the epoch just ended
    assert [s for e, s, _ in t.seen if e == 'after_batch'] == [1, 2, 3, 4]               # the step just taken counts

def test_lower_order_runs_first_and_the_loop_records_after():
    calls = []
    class A(Callback):
        order = 5
        def after_epoch(self, loop): calls.append('A'); loop.row['edited'] = True   # below 80: recorded
    class B(Callback):
        order = -5
        def after_epoch(self, loop): calls.append('B')
    class Late(Callback):
        order = 100
        def after_epoch(self, loop): calls.append(len(loop.history))                # after the Recorder
    loop, _ = loop_with(A(), Late(), B(), steps=2)
    assert calls == ['B', 'A', 1] and loop.history[0]['edited'] is True

def test_steps_around_each_named_update():
    seen = []
    class Watch(Callback):
        def before_step(self, loop): seen.append(('before', loop.update_name))
        def after_step(self, loop): seen.append(('after', loop.update_name))
    torch.manual_seed(0); g, d = nn.Linear(2, 2), nn.Linear(2, 1)
    def step(loop, i):
        loop.update(d(g(X).detach()).mean(), 'critic'); loss = -d(g(X)).mean(); loop.update(loss, 'generator'); return loss.detach()
    TrainLoop(step, dict(generator=g, critic=d), dict(generator=torch.optim.SGD(g.parameters(), 1e-2), critic=torch.optim.SGD(d.parameters(), 1e-2)),
              1, device='cpu', progress=False, callbacks=[Watch()]).run(1)
    assert seen == [('before', 'critic'), ('after', 'critic'), ('before', 'generator'), ('after', 'generator')]

def test_cancel_batch_skips_its_update_and_after_batch():
    t = Trace(order=1); loop, net = loop_with(Raise('before_batch', CancelBatch, 1), t)
    events = [e for e, *_ in t.seen]
    assert events.count('before_step') == 3 and events.count('after_batch') == 3 and loop.step == 4
    _, plain = loop_with(steps=3)          # three updates: the same weights as four steps with one cancelled
    assert torch.equal(net.weight, plain.weight)

def test_cancel_epoch_ends_the_epoch_with_its_row():
    t = Trace(order=1); loop, _ = loop_with(Raise('before_batch', CancelEpoch, 0), t)
    assert [e for e, *_ in t.seen].count('before_step') == 2 and [r['step'] for r in loop.history] == [2, 4]
    assert 'loss' not in loop.history[0] and 'loss' in loop.history[1]      # the cancelled epoch took no step

def test_cancel_fit_still_calls_after_fit():
    t = Trace(order=1); loop, _ = loop_with(Raise('before_batch', CancelFit, 2), t)
    assert t.seen[-1][0] == 'after_fit' and loop.step == 2 and len(loop.history) == 1
    t = Trace(order=1); loop, _ = loop_with(Raise('after_epoch', CancelFit, 2), t, steps=6)
    assert loop.step == 2 and t.seen[-1][0] == 'after_fit'

def test_stop_ends_the_run_after_the_epoch():
    class Stop(Callback):
        def after_epoch(self, loop): loop.stop = True
    loop, _ = loop_with(Stop(), steps=6)
    assert loop.step == 2 and loop.stop

def test_a_callback_state_is_checkpointed_and_resumed(tmp_path):
    class Count(Callback):
        "Counts the batches it saw, across a resume."
        def __init__(self): self.n = 0
        def after_batch(self, loop): self.n += 1
        def state_dict(self): return dict(n=self.n)
        def load_state_dict(self, state): self.n = state['n']
    class Halt(Callback):
        order = 100
        def after_epoch(self, loop):
            if loop.epoch == 0: raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt): loop_with(Count(), Halt(), checkpoint=tmp_path/'ck.pt')
    c = Count(); loop, _ = loop_with(c, checkpoint=tmp_path/'ck.pt')
    assert loop.resumed_from == 2 and c.n == 4

def test_bad_callbacks_are_refused_before_training():
    with pytest.raises(ConfigError, match=r'give Callback\(\), not the class'): loop_with(Callback)
    with pytest.raises(ConfigError, match='needs one of the events'): loop_with(object())
