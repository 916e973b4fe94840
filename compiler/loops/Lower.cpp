// Lower.cpp — the planner: groups nodes into fused loop nests, decides
// which values are stored, orders the nests, lowers each through
// Pointwise.cpp and Roots.cpp, and packs the temporaries into one arena by
// lifetime.
//
// A group is one loop nest: at most one root (the node that owns the nest)
// and the pointwise nodes fused into it, which all run over the same
// elements. A pointwise node joins the group that produced what it reads at
// its own index; groups that a pointwise node reads from both merge when no
// third group lies between them. Values read only inside their group stay
// local scalars; every other value gets a buffer.
#include "loops/Lower.h"

#include "loops/Lowering.h"

#include <algorithm>
#include <functional>
#include <map>
#include <queue>
#include <set>
#include <stdexcept>

namespace nnc::loops {
namespace {

using detail::NodeKind;

struct Group {
  int root = -1;   ///< the node owning the nest, or -1 for a plain loop
  int coRoot = -1; ///< cross_entropy, when fused with its gradient (the root)
  std::vector<int> members; ///< pointwise nodes, in node order
  bool batched = false;
  int64_t per = 0;
  std::set<int> deps;        ///< groups whose values this one reads
  std::set<int> rootReads;   ///< ... of which the root reads (never mergeable)
  std::set<int> scatteredReads; ///< ... that members read at other indices
  bool alive = true;
};

class Planner : public detail::Context {
public:
  Planner(const Graph &g, const std::vector<std::pair<ValueId, ValueId>> &updates,
          const LowerOptions &o)
      : g_(g), updates_(updates), options_(o) {}

  Function run() {
    f_.name = options_.name;
    f_.capacity = options_.capacity;
    resolveAliases();
    formGroups();
    mergeScalars();
    markStored();
    createBuffers();
    std::vector<int> order = emissionOrder();
    std::vector<Stmt> body;
    for (int gi : order) {
      current_ = gi;
      position_ = static_cast<int>(body.size());
      body.push_back(emitGroup(gi));
    }
    position_ = static_cast<int>(body.size());
    for (Stmt &s : copyOutputs())
      body.push_back(std::move(s));
    if (staleFlag_ >= 0) // every cache is now computed from the parameters
      body.push_back(store(staleFlag_, i64(0), f32(0)));
    f_.body = block(std::move(body));
    f_.vars = vars_;
    countNests(f_.body);
    planArena();
    return f_;
  }

  // ---- detail::Context ----
  const Graph &graph() const override { return g_; }
  bool training() const override { return options_.training; }
  uint64_t seed() const override { return options_.seed; }
  int64_t vectorLanes() const override { return options_.vectorLanes; }
  ExprRef step() override {
    if (ExprRef s = scalarInput(kStepName))
      return s;
    throw std::logic_error("internal error: no step number to draw dropout's mask with");
  }
  ExprRef firstExample() override { return scalarInput(kFirstExampleName); }
  int newVar() override { return vars_++; }
  int buffer(ValueId v) override {
    int b = storage_.at(static_cast<size_t>(source_[static_cast<size_t>(v)]));
    if (b < 0)
      throw std::logic_error("internal error: " + g_.value(v).name + " was not stored");
    use(b);
    return b;
  }
  ExprRef read(ValueId v, ExprRef at) override { return read(v, std::move(at), false); }
  int scratch(const std::string &name, int64_t perExample, bool batched) override {
    int b = addBuffer(name, BufferKind::Temp, perExample, batched, Type::F32);
    use(b);
    return b;
  }
  int cache(const std::string &name, int64_t elements) override {
    if (options_.training)
      throw std::logic_error("internal error: a cache in a training step");
    for (size_t b = 0; b < f_.buffers.size(); ++b) // one weight read by two nests
      if (f_.buffers[b].kind == BufferKind::Cache && f_.buffers[b].name == name &&
          f_.buffers[b].perExample == elements)
        return static_cast<int>(b);
    return addBuffer(name, BufferKind::Cache, elements, false, Type::F32);
  }
  ExprRef stale() override {
    if (staleFlag_ < 0)
      staleFlag_ = addBuffer(kStaleName, BufferKind::Cache, 1, false, Type::F32);
    return unary(UnaryOp::ToI64, load(staleFlag_, i64(0)));
  }
  int accumulator() override {
    const Group &grp = groups_[static_cast<size_t>(current_)];
    ValueId out = g_.nodes[static_cast<size_t>(grp.root)].output;
    if (stored_[static_cast<size_t>(out)])
      return buffer(out);
    for (int m : grp.members)
      if (stored_[static_cast<size_t>(g_.nodes[static_cast<size_t>(m)].output)])
        return buffer(g_.nodes[static_cast<size_t>(m)].output);
    throw std::logic_error("internal error: a product with nothing to store");
  }

private:
  // ---- aliases ----
  void resolveAliases() {
    source_.resize(g_.values.size());
    for (size_t v = 0; v < g_.values.size(); ++v)
      source_[v] = static_cast<ValueId>(v);
    kinds_.resize(g_.nodes.size());
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      const Node &n = g_.nodes[i];
      kinds_[i] = detail::kindOf(n, options_.training);
      if (kinds_[i] == NodeKind::Alias)
        source_[static_cast<size_t>(n.output)] = source_[static_cast<size_t>(n.inputs[0])];
    }
  }

  /// The group that produced value v (through aliases), or -1 for inputs,
  /// parameters and state.
  int producer(ValueId v) const {
    const Value &s = g_.value(source_[static_cast<size_t>(v)]);
    if (s.kind != ValueKind::Computed || kinds_[static_cast<size_t>(s.node)] == NodeKind::Constant)
      return -1;
    return find(groupOf_[static_cast<size_t>(s.node)]);
  }
  int find(int gi) const {
    while (!groups_[static_cast<size_t>(gi)].alive)
      gi = forward_[static_cast<size_t>(gi)];
    return gi;
  }

  bool sameExtent(const Group &grp, const Value &v) const {
    return grp.batched == v.shape.isBatched() && grp.per == detail::perExample(v);
  }

  /// Whether group `from` reads, through any chain of groups, group `to`.
  bool dependsOn(int from, int to) const {
    std::vector<int> stack{from};
    std::set<int> seen;
    while (!stack.empty()) {
      int x = find(stack.back());
      stack.pop_back();
      if (x == to)
        return true;
      if (!seen.insert(x).second)
        continue;
      for (int d : groups_[static_cast<size_t>(x)].deps)
        stack.push_back(d);
    }
    return false;
  }

  int newGroup(int node, bool isRoot) {
    Group grp;
    const Value &out = g_.value(g_.nodes[static_cast<size_t>(node)].output);
    grp.batched = out.shape.isBatched();
    grp.per = detail::perExample(out);
    if (isRoot)
      grp.root = node;
    else
      grp.members.push_back(node);
    groups_.push_back(grp);
    forward_.push_back(-1);
    return static_cast<int>(groups_.size()) - 1;
  }

  /// The groups node i reads, split by how.
  struct Reads {
    std::set<int> all, ownIndex, scattered;
  };
  Reads readsOf(int i) const {
    const Node &n = g_.nodes[static_cast<size_t>(i)];
    Reads r;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      if (!detail::readsInput(n, k))
        continue;
      int p = producer(n.inputs[k]);
      if (p < 0)
        continue;
      r.all.insert(p);
      bool own = kinds_[static_cast<size_t>(i)] == NodeKind::Pointwise &&
                 detail::readsOwnIndex(g_, n, k);
      (own ? r.ownIndex : r.scattered).insert(p);
    }
    return r;
  }

  void addReads(int gi, const Reads &r, bool byRoot) {
    Group &grp = groups_[static_cast<size_t>(gi)];
    for (int p : r.all)
      if (p != gi)
        grp.deps.insert(p);
    for (int p : r.scattered)
      if (p != gi)
        (byRoot ? grp.rootReads : grp.scatteredReads).insert(p);
  }

  void formGroups() {
    groupOf_.assign(g_.nodes.size(), -1);
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      const Node &n = g_.nodes[i];
      int node = static_cast<int>(i);
      if (kinds_[i] == NodeKind::Alias || kinds_[i] == NodeKind::Constant)
        continue;
      Reads r = readsOf(node);
      if (kinds_[i] == NodeKind::Root) {
        int gi = n.op->name == "cross_entropy_grad" ? pairWithLoss(node, r) : -1;
        if (gi < 0) {
          gi = newGroup(node, true);
          for (int p : r.all)
            r.scattered.insert(p);
          addReads(gi, r, true);
        }
        groupOf_[i] = gi;
        continue;
      }
      // A pointwise node: join the newest group it reads at its own index.
      std::vector<int> candidates;
      for (int p : r.ownIndex)
        if (sameExtent(groups_[static_cast<size_t>(p)], g_.value(n.output)) && !r.scattered.count(p))
          candidates.push_back(p);
      std::sort(candidates.rbegin(), candidates.rend());
      int chosen = -1;
      for (int gi : candidates) {
        bool cycle = false;
        for (int p : r.all)
          if (p != gi && dependsOn(p, gi))
            cycle = true;
        if (!cycle) {
          chosen = gi;
          break;
        }
      }
      if (chosen < 0) {
        chosen = newGroup(node, false);
      } else {
        groups_[static_cast<size_t>(chosen)].members.push_back(node);
      }
      groupOf_[i] = chosen;
      addReads(chosen, r, false);
      for (int other : candidates)
        if (find(other) != find(chosen))
          tryMerge(find(chosen), find(other));
    }
  }

  /// Scalar arithmetic (the schedule, bias corrections) in as few loops as
  /// the reads allow.
  void mergeScalars() {
    for (size_t a = 0; a < groups_.size(); ++a)
      for (size_t b = a + 1; b < groups_.size(); ++b) {
        const Group &ga = groups_[a], &gb = groups_[b];
        if (ga.alive && gb.alive && ga.root < 0 && gb.root < 0 && ga.per == 1 && !ga.batched &&
            gb.per == 1 && !gb.batched)
          tryMerge(static_cast<int>(a), static_cast<int>(b));
      }
  }

  /// cross_entropy_grad joins the group of its cross_entropy (same logits
  /// and labels) when nothing else has joined it: one pass for both.
  int pairWithLoss(int node, const Reads &r) {
    const Node &n = g_.nodes[static_cast<size_t>(node)];
    for (size_t gi = 0; gi < groups_.size(); ++gi) {
      Group &grp = groups_[gi];
      if (!grp.alive || grp.root < 0 || grp.coRoot >= 0 || !grp.members.empty())
        continue;
      const Node &loss = g_.nodes[static_cast<size_t>(grp.root)];
      if (loss.op->name != "cross_entropy" || loss.inputs[0] != n.inputs[1] ||
          loss.inputs[1] != n.inputs[2])
        continue;
      bool cycle = false;
      for (int p : r.all)
        if (p != static_cast<int>(gi) && dependsOn(p, static_cast<int>(gi)))
          cycle = true;
      if (cycle)
        return -1;
      grp.coRoot = grp.root;
      grp.root = node;
      const Value &out = g_.value(n.output);
      grp.batched = out.shape.isBatched();
      grp.per = detail::perExample(out);
      Reads all = r;
      for (int p : r.all)
        all.scattered.insert(p);
      addReads(static_cast<int>(gi), all, true);
      return static_cast<int>(gi);
    }
    return -1;
  }

  /// Merges groups a and b into one when they run over the same elements,
  /// at most one has a root, neither reads the other at other indices, and
  /// no third group lies between them.
  void tryMerge(int a, int b) {
    Group &ga = groups_[static_cast<size_t>(a)], &gb = groups_[static_cast<size_t>(b)];
    if (ga.batched != gb.batched || ga.per != gb.per || (ga.root >= 0 && gb.root >= 0))
      return;
    if (ga.rootReads.count(b) || gb.rootReads.count(a) || ga.scatteredReads.count(b) ||
        gb.scatteredReads.count(a))
      return;
    for (int x : ga.deps)
      if (find(x) != b && dependsOn(x, b))
        return;
    for (int x : gb.deps)
      if (find(x) != a && dependsOn(x, a))
        return;
    int into = ga.root >= 0 ? a : (gb.root >= 0 ? b : std::min(a, b));
    int from = into == a ? b : a;
    Group &gi = groups_[static_cast<size_t>(into)], &gf = groups_[static_cast<size_t>(from)];
    for (int m : gf.members) {
      gi.members.push_back(m);
      groupOf_[static_cast<size_t>(m)] = into;
    }
    std::sort(gi.members.begin(), gi.members.end());
    for (int d : gf.deps)
      gi.deps.insert(d);
    for (int d : gf.rootReads)
      gi.rootReads.insert(d);
    for (int d : gf.scatteredReads)
      gi.scatteredReads.insert(d);
    gi.deps.erase(into);
    gi.deps.erase(from);
    gf.alive = false;
    gf.members.clear();
    forward_[static_cast<size_t>(from)] = into;
    for (Group &x : groups_) {
      if (x.deps.erase(from))
        x.deps.insert(into);
      if (x.rootReads.erase(from))
        x.rootReads.insert(into);
      if (x.scatteredReads.erase(from))
        x.scatteredReads.insert(into);
    }
    for (Group &x : groups_)
      x.deps.erase(static_cast<int>(&x - groups_.data()));
  }

  // ---- what gets stored ----
  void markStored() {
    stored_.assign(g_.values.size(), false);
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      if (kinds_[i] == NodeKind::Alias || kinds_[i] == NodeKind::Constant)
        continue;
      const Node &n = g_.nodes[i];
      int mine = find(groupOf_[i]);
      const Group &grp = groups_[static_cast<size_t>(mine)];
      bool isRoot = grp.root == static_cast<int>(i) || grp.coRoot == static_cast<int>(i);
      for (size_t k = 0; k < n.inputs.size(); ++k) {
        if (!detail::readsInput(n, k))
          continue;
        ValueId s = source_[static_cast<size_t>(n.inputs[k])];
        if (g_.value(s).kind != ValueKind::Computed || isConstant(s))
          continue;
        if (isRoot || producer(s) != mine || !detail::readsOwnIndex(g_, n, k))
          stored_[static_cast<size_t>(s)] = true;
      }
    }
    for (ValueId out : g_.outputs)
      if (!isConstant(source_[static_cast<size_t>(out)]))
        stored_[static_cast<size_t>(source_[static_cast<size_t>(out)])] = true;
  }

  bool isConstant(ValueId v) const {
    const Value &val = g_.value(v);
    return val.kind == ValueKind::Computed &&
           kinds_[static_cast<size_t>(val.node)] == NodeKind::Constant;
  }

  bool live(const Group &grp) const {
    auto storedNode = [&](int node) {
      return node >= 0 && stored_[static_cast<size_t>(g_.nodes[static_cast<size_t>(node)].output)];
    };
    if (storedNode(grp.root) || storedNode(grp.coRoot))
      return true;
    return std::any_of(grp.members.begin(), grp.members.end(), storedNode);
  }

  /// Groups in an order that respects every read, earliest node first.
  std::vector<int> emissionOrder() {
    std::vector<int> liveGroups;
    for (size_t gi = 0; gi < groups_.size(); ++gi)
      if (groups_[gi].alive && live(groups_[gi]))
        liveGroups.push_back(static_cast<int>(gi));
    std::map<int, int> pending;
    std::map<int, std::vector<int>> readers;
    auto firstNode = [&](int gi) {
      const Group &grp = groups_[static_cast<size_t>(gi)];
      int first = grp.members.empty() ? INT32_MAX : grp.members.front();
      for (int r : {grp.root, grp.coRoot})
        if (r >= 0)
          first = std::min(first, r);
      return first;
    };
    std::set<int> liveSet(liveGroups.begin(), liveGroups.end());
    for (int gi : liveGroups) {
      pending[gi] = 0;
      for (int d : groups_[static_cast<size_t>(gi)].deps) {
        int dd = find(d);
        if (dd != gi && liveSet.count(dd)) {
          ++pending[gi];
          readers[dd].push_back(gi);
        }
      }
    }
    using Item = std::pair<int, int>; // (first node, group)
    std::priority_queue<Item, std::vector<Item>, std::greater<Item>> ready;
    for (int gi : liveGroups)
      if (pending[gi] == 0)
        ready.push({firstNode(gi), gi});
    std::vector<int> order;
    while (!ready.empty()) {
      int gi = ready.top().second;
      ready.pop();
      order.push_back(gi);
      for (int r : readers[gi])
        if (--pending[r] == 0)
          ready.push({firstNode(r), r});
    }
    if (order.size() != liveGroups.size())
      throw std::logic_error("internal error: fused groups form a cycle");
    return order;
  }

  // ---- buffers ----
  /// The graph's scalar input `name` as an i64, or null when it has none.
  ExprRef scalarInput(const std::string &name) {
    for (size_t v = 0; v < g_.values.size(); ++v)
      if (g_.values[v].name == name && g_.values[v].kind == ValueKind::Input)
        return unary(UnaryOp::ToI64, load(buffer(static_cast<ValueId>(v)), i64(0)));
    return nullptr;
  }

  int addBuffer(const std::string &name, BufferKind kind, int64_t per, bool batched, Type type) {
    Buffer b;
    b.name = name;
    b.kind = kind;
    b.perExample = per;
    b.batched = batched;
    b.type = type;
    f_.buffers.push_back(b);
    firstUse_.push_back(position_);
    lastUse_.push_back(position_);
    return static_cast<int>(f_.buffers.size()) - 1;
  }
  int addValueBuffer(ValueId v, BufferKind kind, const std::string &name) {
    const Value &val = g_.value(v);
    return addBuffer(name, kind, detail::perExample(val), val.shape.isBatched(),
                     val.dtype == DType::I64 ? Type::I64 : Type::F32);
  }
  void use(int b) {
    firstUse_[static_cast<size_t>(b)] = std::min(firstUse_[static_cast<size_t>(b)], position_);
    lastUse_[static_cast<size_t>(b)] = std::max(lastUse_[static_cast<size_t>(b)], position_);
  }

  void createBuffers() {
    storage_.assign(g_.values.size(), -1);
    position_ = 0;
    for (size_t v = 0; v < g_.values.size(); ++v) {
      ValueKind k = g_.values[v].kind;
      if (k == ValueKind::Input || k == ValueKind::Label)
        storage_[v] = addValueBuffer(static_cast<ValueId>(v), BufferKind::Input, g_.values[v].name);
    }
    for (size_t v = 0; v < g_.values.size(); ++v) {
      ValueKind k = g_.values[v].kind;
      if (k == ValueKind::Param || k == ValueKind::State)
        storage_[v] = addValueBuffer(static_cast<ValueId>(v), BufferKind::Param, g_.values[v].name);
    }
    // One output buffer per graph output; a stored value takes the first
    // output that is it, the rest are copied at the end.
    std::vector<bool> updateUsed(updates_.size(), false);
    for (ValueId out : g_.outputs) {
      ValueId s = source_[static_cast<size_t>(out)];
      int b = addValueBuffer(out, BufferKind::Output, g_.value(out).name);
      for (size_t u = 0; u < updates_.size(); ++u)
        if (!updateUsed[u] && updates_[u].second == out) {
          updateUsed[u] = true;
          f_.buffers[static_cast<size_t>(b)].updates =
              storage_[static_cast<size_t>(updates_[u].first)];
          break;
        }
      if (g_.value(s).kind == ValueKind::Computed && !isConstant(s) &&
          storage_[static_cast<size_t>(s)] < 0)
        storage_[static_cast<size_t>(s)] = b;
      else
        copies_.push_back({b, s});
    }
    for (size_t v = 0; v < g_.values.size(); ++v)
      if (stored_[v] && storage_[v] < 0 && g_.values[v].kind == ValueKind::Computed)
        storage_[v] = addValueBuffer(static_cast<ValueId>(v), BufferKind::Temp, g_.values[v].name);
    // Temporaries' lifetimes start where they are written.
    for (size_t b = 0; b < f_.buffers.size(); ++b)
      if (f_.buffers[b].kind == BufferKind::Temp)
        firstUse_[b] = INT32_MAX, lastUse_[b] = -1;
  }

  // ---- emission ----
  /// A value inside the group being emitted: its local, or a load.
  ExprRef read(ValueId v, ExprRef at, bool ownIndex) {
    ValueId s = source_[static_cast<size_t>(v)];
    if (isConstant(s)) {
      detail::Reader none = [](size_t, ExprRef, bool) -> ExprRef {
        throw std::logic_error("internal error: a constant with inputs");
      };
      return detail::pointwise(g_.nodes[static_cast<size_t>(g_.value(s).node)], *this, at, none);
    }
    auto local = locals_.find(s);
    if (ownIndex && local != locals_.end())
      return var(local->second, Type::F32);
    return load(buffer(s), std::move(at), g_.value(s).dtype == DType::I64 ? Type::I64 : Type::F32);
  }

  /// The pointwise members of the group at index `at`, each a local, the
  /// stored ones stored.
  std::vector<Stmt> members(const Group &grp, ExprRef at) {
    std::vector<Stmt> out;
    for (int m : grp.members) {
      const Node &n = g_.nodes[static_cast<size_t>(m)];
      detail::Reader reader = [&](size_t k, ExprRef a, bool own) { return read(n.inputs[k], a, own); };
      ExprRef value = detail::pointwise(n, *this, at, reader);
      int v = newVar();
      out.push_back(local(v, value));
      locals_[n.output] = v;
      if (stored_[static_cast<size_t>(n.output)]) {
        int b = buffer(n.output);
        out.push_back(store(b, at, var(v, Type::F32)));
      }
    }
    return out;
  }

  Stmt emitGroup(int gi) {
    const Group &grp = groups_[static_cast<size_t>(gi)];
    locals_.clear();
    // Stored values are written here: their lifetimes start here.
    auto written = [&](int node) {
      if (node >= 0 && stored_[static_cast<size_t>(g_.nodes[static_cast<size_t>(node)].output)])
        buffer(g_.nodes[static_cast<size_t>(node)].output);
    };
    written(grp.root);
    written(grp.coRoot);
    for (int m : grp.members)
      written(m);
    // "fc3 (contract; line 19) + optimizer (scale, add, sqrt, div; line 23)":
    // each layer the group computes, once, with its ops and the .nn line it
    // was written on (for gradients and updates: the line of the layer, or
    // of the optimizer or schedule, they come from).
    struct Part {
      std::string layer;
      std::vector<std::string> ops;
      uint32_t line = 0;
    };
    std::vector<Part> parts;
    auto describe = [&](int node) {
      const Node &n = g_.nodes[static_cast<size_t>(node)];
      auto part = std::find_if(parts.begin(), parts.end(),
                               [&](const Part &p) { return p.layer == n.layer; });
      if (part == parts.end())
        part = parts.insert(parts.end(), Part{n.layer, {}, n.loc.valid() ? n.loc.line : 0});
      if (std::find(part->ops.begin(), part->ops.end(), n.op->name) == part->ops.end())
        part->ops.push_back(n.op->name);
    };
    if (grp.coRoot >= 0)
      describe(grp.coRoot);
    if (grp.root >= 0)
      describe(grp.root);
    for (int m : grp.members)
      describe(m);
    std::string comment;
    for (const Part &p : parts) {
      comment += (comment.empty() ? "" : " + ") + p.layer + " (";
      for (size_t i = 0; i < p.ops.size(); ++i)
        comment += (i ? ", " : "") + p.ops[i];
      if (p.line > 0)
        comment += "; line " + std::to_string(p.line);
      comment += ")";
    }
    if (grp.root < 0) {
      int e = newVar();
      ExprRef extent = grp.batched ? mul(batch(), i64(grp.per)) : i64(grp.per);
      std::vector<Stmt> body = members(grp, var(e, Type::I64));
      Stmt nest = grp.per == 1 && !grp.batched
                      ? loop(e, extent, std::move(body))
                      : parallelLoop(e, extent, i64(static_cast<int64_t>(2 * grp.members.size())),
                                     std::move(body));
      return block({std::move(nest)}, comment);
    }
    const Node &rootNode = g_.nodes[static_cast<size_t>(grp.root)];
    detail::Epilogue epilogue = [&](ExprRef at, ExprRef value) {
      std::vector<Stmt> out;
      int v = newVar();
      out.push_back(local(v, value));
      locals_[rootNode.output] = v;
      if (stored_[static_cast<size_t>(rootNode.output)]) {
        int b = buffer(rootNode.output);
        bool already = value->kind == ExprKind::Load && value->buffer == b && value->a == at;
        if (!already)
          out.push_back(store(b, at, var(v, Type::F32)));
      }
      for (Stmt &s : members(grp, at))
        out.push_back(std::move(s));
      // Nothing but the root's own value, already in place: no loop needed.
      if (out.size() == 1)
        out.clear();
      return out;
    };
    Stmt nest = grp.coRoot >= 0
                    ? detail::crossEntropyWithGradient(g_.nodes[static_cast<size_t>(grp.coRoot)],
                                                       rootNode, *this, epilogue)
                    : detail::root(rootNode, *this, epilogue);
    return block({std::move(nest)}, comment);
  }

  /// Outputs that are an input, a parameter, or a value already output.
  std::vector<Stmt> copyOutputs() {
    std::vector<Stmt> out;
    for (auto [b, s] : copies_) {
      int e = newVar();
      const Buffer &buf = f_.buffers[static_cast<size_t>(b)];
      ExprRef extent = buf.batched ? mul(batch(), i64(buf.perExample)) : i64(buf.perExample);
      use(b);
      ExprRef at = var(e, Type::I64);
      out.push_back(block({loop(e, extent, {store(b, at, read(s, at, false))})}, "output " + buf.name));
    }
    return out;
  }

  void countNests(const Stmt &s) {
    if (s.kind == StmtKind::For)
      ++f_.nests;
    else if (s.kind == StmtKind::Block)
      for (const Stmt &b : s.body)
        countNests(b);
  }

  /// First fit by lifetime: each temporary takes the lowest offset that no
  /// temporary alive at the same time occupies. Offsets are 64-byte aligned.
  void planArena() {
    struct Placed {
      int64_t offset, size;
      int first, last;
    };
    std::vector<Placed> placed;
    std::vector<size_t> temps;
    for (size_t b = 0; b < f_.buffers.size(); ++b)
      if (f_.buffers[b].kind == BufferKind::Temp)
        temps.push_back(b);
    std::stable_sort(temps.begin(), temps.end(),
                     [&](size_t a, size_t b) { return firstUse_[a] < firstUse_[b]; });
    int64_t top = 0;
    for (size_t b : temps) {
      int64_t size = (f_.buffers[b].elements(f_.capacity) + 15) / 16 * 16;
      int first = firstUse_[b], last = std::max(lastUse_[b], firstUse_[b]);
      std::vector<std::pair<int64_t, int64_t>> busy;
      for (const Placed &p : placed)
        if (p.first <= last && first <= p.last)
          busy.emplace_back(p.offset, p.offset + p.size);
      std::sort(busy.begin(), busy.end());
      int64_t offset = 0;
      for (auto [lo, hi] : busy) {
        if (offset + size <= lo)
          break;
        offset = std::max(offset, hi);
      }
      f_.buffers[b].offset = offset;
      placed.push_back({offset, size, first, last});
      top = std::max(top, offset + size);
    }
    f_.arenaElements = top;
  }

  const Graph &g_;
  const std::vector<std::pair<ValueId, ValueId>> &updates_;
  LowerOptions options_;
  Function f_;
  int vars_ = 0;
  int staleFlag_ = -1; ///< the @stale cache flag, once a nest asked for it
  std::vector<ValueId> source_;
  std::vector<NodeKind> kinds_;
  std::vector<int> groupOf_;
  std::vector<Group> groups_;
  std::vector<int> forward_;
  std::vector<bool> stored_;
  std::vector<int> storage_;
  std::vector<std::pair<int, ValueId>> copies_;
  std::vector<int> firstUse_, lastUse_;
  std::map<ValueId, int> locals_;
  int current_ = -1, position_ = 0;
};

} // namespace

bool canLower(const Graph &graph, bool training, std::string &why) {
  for (const Node &n : graph.nodes)
    if (!detail::lowerable(graph, n, training, why))
      return false;
  return true;
}

Function lower(const Graph &graph, const std::vector<std::pair<ValueId, ValueId>> &updates,
               const LowerOptions &options) {
  return Planner(graph, updates, options).run();
}

Function lowerInference(const Graph &graph, int64_t capacity) {
  LowerOptions o;
  o.capacity = capacity;
  return lower(graph, {}, o);
}

} // namespace nnc::loops
