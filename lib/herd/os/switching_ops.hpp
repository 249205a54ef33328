// The process ops of one pool, whose program (`command =` or `worker =`) a reload may change
// (DESIGN.md §7a). The latest ops start every new worker; earlier ones keep serving the workers
// they started (signals, reaping, output pipes) until the last of them is reaped. A reload whose
// new generation fails switches back, and the workers of the failed program stay with their ops
// until they are gone.
#pragma once

#include <herd/os/process_ops.hpp>

#include <memory>
#include <unordered_set>
#include <vector>

namespace herd {

class SwitchingOps : public ProcessOps {
public:
    /// Ops that outlive the manager (made at start), or ops it owns (a pool a reload added).
    explicit SwitchingOps(ProcessOps& first);
    explicit SwitchingOps(std::unique_ptr<ProcessOps> first);

    /// From now on `next` starts the workers; those running now stay with the ops that started them.
    void switch_to(std::unique_ptr<ProcessOps> next, const std::vector<int>& running);
    /// The ops before the latest switch start the workers again (a reload that failed).
    void switch_back();
    /// No going back any more (the reload is complete): earlier ops go with their last worker.
    void settle();
    /// How many ops serve workers now, the one that starts them included.
    std::size_t serving() const { return entries_.size(); }

    Started spawn(int slot, unsigned generation) override;
    bool send(int pid, int signal) override;
    std::optional<int> try_reap(int pid) override;
    void prepare() override;
    void discard() override;
    bool owns(int pid) const override;
    bool forwards_log_reopen() const override;
    std::vector<std::pair<int, int>> hand_over() override;
    void adopt_output(int pid, int slot, int fd) override;
    std::optional<int> exited_child() override;
    void reap_orphan(int pid) override;
    void exec_image(const ImageExec& image) override;
    void close_in_child() noexcept override;

private:
    struct Entry {
        std::unique_ptr<ProcessOps> owned;   // null: made at start, owned by whoever started the manager
        ProcessOps* ops = nullptr;
        std::unordered_set<int> pids;        // the live workers it started
    };
    ProcessOps& current() { return *entries_.back().ops; }
    Entry& route(int pid);
    void drop_idle();

    std::vector<Entry> entries_;   // back(): starts new workers
    bool can_go_back_ = false;     // the entry before back() stays for switch_back()
};

}  // namespace herd
