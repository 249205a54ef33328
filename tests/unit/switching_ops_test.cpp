// A pool's ops across a reload that changes its program: new workers from the new ops, every
// earlier worker signalled and reaped by the ops that started it.
#include <herd/os/switching_ops.hpp>

#include <doctest/doctest.h>

#include <memory>
#include <set>
#include <vector>

using namespace herd;

namespace {

// Starts pids from `first` on; a pid exits when told. Records what it was asked.
class CountingOps : public ProcessOps {
public:
    CountingOps(int first, int* alive) : next_(first), alive_(alive) { ++*alive_; }
    ~CountingOps() override { --*alive_; }
    Started spawn(int, unsigned) override
    {
        live.insert(next_);
        return {next_++, -1};
    }
    bool send(int pid, int signal) override
    {
        signals.push_back({pid, signal});
        return live.count(pid) > 0;
    }
    std::optional<int> try_reap(int pid) override
    {
        if (!exited.count(pid)) return std::nullopt;
        exited.erase(pid);
        live.erase(pid);
        return 0;
    }
    void discard() override { ++discarded; }
    std::set<int> live, exited;
    std::vector<std::pair<int, int>> signals;
    int discarded = 0;

private:
    int next_;
    int* alive_;
};

}  // namespace

TEST_CASE("after a switch new workers come from the new ops; the running ones stay with theirs until reaped")
{
    int alive = 0;
    CountingOps first(100, &alive);
    SwitchingOps ops(first);
    const int a = ops.spawn(0, 1).pid, b = ops.spawn(1, 1).pid;

    auto next = std::make_unique<CountingOps>(200, &alive);
    CountingOps& second = *next;
    ops.switch_to(std::move(next), {a, b});
    CHECK(first.discarded == 1);   // its standby would start the old program
    const int c = ops.spawn(0, 2).pid;
    CHECK(c == 200);
    CHECK(second.live.count(c) == 1);

    ops.send(a, 3);
    ops.send(c, 3);
    CHECK(first.signals == std::vector<std::pair<int, int>>{{a, 3}});
    CHECK(second.signals == std::vector<std::pair<int, int>>{{c, 3}});

    first.exited = {a, b};
    CHECK(ops.try_reap(a) == 0);
    CHECK(ops.try_reap(b) == 0);
    CHECK(ops.serving() == 2);   // kept: the reload could still go back
    ops.settle();
    CHECK(ops.serving() == 1);
    CHECK(alive == 2);           // `first` is not the switch's to destroy
}

TEST_CASE("an owned earlier ops goes with its last worker once the reload is complete")
{
    int alive = 0;
    auto owned = std::make_unique<CountingOps>(100, &alive);
    CountingOps& first = *owned;
    SwitchingOps ops(std::move(owned));
    const int a = ops.spawn(0, 1).pid;
    auto next = std::make_unique<CountingOps>(200, &alive);
    CountingOps& second = *next;
    ops.switch_to(std::move(next), {a});
    ops.settle();                             // complete while `a` still drains
    CHECK(ops.try_reap(a) == std::nullopt);   // still running: nothing reaped, nothing goes
    CHECK(ops.serving() == 2);
    ops.send(a, 15);
    CHECK(first.signals.size() == 1);
    CHECK(second.signals.empty());

    ops.switch_to(std::make_unique<CountingOps>(300, &alive), {});   // a third program meanwhile
    CHECK(ops.serving() == 3);
    ops.settle();
    CHECK(ops.serving() == 2);   // the second had no worker left; the first still serves `a`
    CHECK(alive == 2);
    first.exited = {a};
    CHECK(ops.try_reap(a) == 0);
    CHECK(ops.serving() == 1);
    CHECK(alive == 1);           // the first went with `a`
}

TEST_CASE("a failed reload switches back: the old ops start workers again, the new one's workers stay with it")
{
    int alive = 0;
    CountingOps first(100, &alive);
    SwitchingOps ops(first);
    const int a = ops.spawn(0, 1).pid;
    auto next = std::make_unique<CountingOps>(200, &alive);
    CountingOps& second = *next;
    ops.switch_to(std::move(next), {a});
    const int c = ops.spawn(1, 2).pid;   // the new program's worker, which never gets ready

    ops.switch_back();
    CHECK(second.discarded == 1);
    const int d = ops.spawn(1, 1).pid;
    CHECK(first.live.count(d) == 1);
    ops.send(c, 9);
    ops.send(a, 15);
    CHECK(second.signals == std::vector<std::pair<int, int>>{{c, 9}});
    CHECK(first.signals == std::vector<std::pair<int, int>>{{a, 15}});

    second.exited = {c};
    CHECK(ops.try_reap(c) == 0);
    CHECK(ops.serving() == 1);   // the failed program had no worker left: gone
    CHECK(alive == 1);
}
