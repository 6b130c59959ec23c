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


# ---------------------------------------------------------------- fit's arguments are callbacks: the same run either way, bit for bit
import numpy as np
from medimb.core import set_seed
from medimb.data import phantom, split_dataset, BatchAugment
from medimb.models import get_model
from medimb.train import (fit, BalancedSampler, CustomOrder, MixUp, ClassWeights, LossFunction, Augment, BestEpoch, EpochEndFunction,
                          OptimizerFactory, fit_callbacks, read_checkpoint)

@pytest.fixture(scope='module')
def small():
    return split_dataset(phantom(120, 24, ratio=0.25, finding='pneumonia', strength=2.0, seed=0), seed=0)

def _fit(small, **kw):
    set_seed(0); m = get_model('small_cnn', widths=(4, 8))
    h = fit(m, small.train, small.val, epochs=kw.pop('epochs', 2), batch_size=16, device='cpu', progress=False, **kw)
    return [v.clone() for v in m.state_dict().values()], h

def _same(a, b):
    (wa, ha), (wb, hb) = a, b
    assert all(torch.equal(x, y) for x, y in zip(wa, wb))
    assert [r['train_loss'] for r in ha.rows] == [r['train_loss'] for r in hb.rows] and ha.best_epoch == hb.best_epoch

class Halving(torch.nn.Module):
    "A loss with an epoch: half the cross-entropy from epoch 1 on."
    def __init__(self): super().__init__(); self.epoch = 0
    def forward(self, z, t): return torch.nn.functional.cross_entropy(z.float(), t) * (0.5 if self.epoch else 1.0)

@pytest.mark.parametrize('argument,callback', [
    (dict(sampler='balanced'), lambda: BalancedSampler()),
    (dict(sampler=lambda labels, g: torch.randperm(len(labels), generator=g)[:20]), None),
    (dict(mixup=0.4), lambda: MixUp(0.4)),
    (dict(class_weight='balanced'), lambda: ClassWeights('balanced')),
    (dict(class_weight=[1., 3.]), lambda: ClassWeights([1., 3.])),
    (dict(augment=BatchAugment(flip=0.5, rotate=10)), lambda: Augment(BatchAugment(flip=0.5, rotate=10))),
    (dict(patience=1, monitor='val_loss', epochs=4), lambda: BestEpoch('val_loss', patience=1)),
    (dict(restore_best=False), lambda: BestEpoch(restore_best=False)),
])
def test_an_argument_and_its_callback_train_alike(small, argument, callback):
    argument = dict(argument); epochs = argument.pop('epochs', 2)
    if callback is None: callback = lambda: CustomOrder(argument['sampler'])
    _same(_fit(small, epochs=epochs, **argument), _fit(small, epochs=epochs, callbacks=[callback()]))

def test_a_loss_with_an_epoch_trains_alike_as_argument_and_callback(small):
    _same(_fit(small, loss_fn=Halving(), epochs=3), _fit(small, callbacks=[LossFunction(Halving())], epochs=3))

def test_remedies_stack_as_a_list(small):
    a = _fit(small, sampler='balanced', mixup=0.3, class_weight='balanced')
    b = _fit(small, callbacks=[MixUp(0.3), ClassWeights('balanced'), BalancedSampler()])   # the list's order does not matter: `order` does
    _same(a, b)

def test_the_checkpoint_key_is_the_same_either_way(small, tmp_path):
    _fit(small, sampler='balanced', mixup=0.3, checkpoint=tmp_path/'a.pt')
    _, h = _fit(small, callbacks=[BalancedSampler(), MixUp(0.3)], checkpoint=tmp_path/'a.pt')   # resumes the argument's run: nothing left
    assert h.resumed_from == 1 and read_checkpoint(tmp_path/'a.pt')['config']['sampler'] == 'balanced'

def test_two_callbacks_in_one_role_are_refused_before_training(small):
    with pytest.raises(ConfigError, match='two callbacks for the epoch order'): _fit(small, sampler='balanced', callbacks=[BalancedSampler()])
    with pytest.raises(ConfigError, match='two callbacks for the loss'): _fit(small, class_weight='balanced', loss_fn=Halving())
    with pytest.raises(ConfigError, match='two callbacks for the best epoch'): _fit(small, patience=2, callbacks=[BestEpoch()])

def test_a_new_remedy_is_a_callback_not_a_fit_argument(small):
    class StopBelow(Callback):
        "Ends training once an epoch's training loss falls below `threshold`."
        def __init__(self, threshold): self.threshold = threshold
        def after_epoch(self, loop):
            if loop.row['train_loss'] < self.threshold: loop.stop = True   # after this epoch (recorded, checkpointed)
    _, h = _fit(small, epochs=5, callbacks=[StopBelow(10.)])
    assert len(h.rows) == 1

def test_fit_callbacks_keeps_what_was_given():
    cbs, rest = fit_callbacks(dict(sampler='random', mixup=0, weight_decay=0.))
    assert [c.fit_options for c in cbs] == [dict(sampler='random'), dict(mixup=0)] and rest == dict(weight_decay=0.)
    assert fit_callbacks(dict(sampler='random', mixup=0), given=False)[0] == []
