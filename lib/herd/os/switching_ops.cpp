#include <herd/os/switching_ops.hpp>

#include <algorithm>

namespace herd {

SwitchingOps::SwitchingOps(ProcessOps& first)
{
    entries_.push_back(Entry{nullptr, &first, {}});
}

SwitchingOps::SwitchingOps(std::unique_ptr<ProcessOps> first)
{
    ProcessOps* ops = first.get();
    entries_.push_back(Entry{std::move(first), ops, {}});
}

void SwitchingOps::switch_to(std::unique_ptr<ProcessOps> next, const std::vector<int>& running)
{
    current().discard();   // a standby of the program before would start the wrong one
    entries_.back().pids.insert(running.begin(), running.end());
    ProcessOps* ops = next.get();
    entries_.push_back(Entry{std::move(next), ops, {}});
    can_go_back_ = true;
    drop_idle();
}

void SwitchingOps::switch_back()
{
    if (entries_.size() < 2 || !can_go_back_) return;
    current().discard();
    std::swap(entries_[entries_.size() - 1], entries_[entries_.size() - 2]);
    can_go_back_ = false;
    drop_idle();
}

void SwitchingOps::settle()
{
    can_go_back_ = false;
    drop_idle();
}

SwitchingOps::Entry& SwitchingOps::route(int pid)
{
    for (std::size_t i = 0; i + 1 < entries_.size(); ++i)
        if (entries_[i].pids.contains(pid)) return entries_[i];
    return entries_.back();
}

void SwitchingOps::drop_idle()
{
    const std::size_t kept = can_go_back_ ? entries_.size() - 2 : entries_.size() - 1;
    for (std::size_t i = entries_.size() - 1; i-- > 0;)
        if (i != kept && entries_[i].pids.empty()) entries_.erase(entries_.begin() + std::ptrdiff_t(i));
}

Started SwitchingOps::spawn(int slot, unsigned generation)
{
    const Started started = current().spawn(slot, generation);
    entries_.back().pids.insert(started.pid);
    return started;
}

bool SwitchingOps::send(int pid, int signal)
{
    return route(pid).ops->send(pid, signal);
}

std::optional<int> SwitchingOps::try_reap(int pid)
{
    Entry& entry = route(pid);
    auto status = entry.ops->try_reap(pid);
    if (status) {
        entry.pids.erase(pid);
        if (&entry != &entries_.back()) drop_idle();
    }
    return status;
}

void SwitchingOps::prepare()
{
    current().prepare();
}

void SwitchingOps::discard()
{
    for (auto& e : entries_) e.ops->discard();
}

bool SwitchingOps::owns(int pid) const
{
    return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.ops->owns(pid); });
}

bool SwitchingOps::forwards_log_reopen() const
{
    return entries_.back().ops->forwards_log_reopen();
}

std::vector<std::pair<int, int>> SwitchingOps::hand_over()
{
    std::vector<std::pair<int, int>> all;
    for (auto& e : entries_) {
        auto some = e.ops->hand_over();
        all.insert(all.end(), some.begin(), some.end());
    }
    return all;
}

void SwitchingOps::adopt_output(int pid, int slot, int fd)
{
    current().adopt_output(pid, slot, fd);
}

std::optional<int> SwitchingOps::exited_child()
{
    return current().exited_child();
}

void SwitchingOps::reap_orphan(int pid)
{
    current().reap_orphan(pid);
}

void SwitchingOps::exec_image(const ImageExec& image)
{
    current().exec_image(image);
}

void SwitchingOps::close_in_child() noexcept
{
    for (auto& e : entries_) e.ops->close_in_child();
}

}  // namespace herd
