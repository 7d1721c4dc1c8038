import GantryAPI

extension SchedulerState {
    /// Nodes a workload in queue `q` may use by pool and gpuType (schedulable or not).
    func eligible(pool: String?, gpuType: String?) -> [Int] {
        let k = EligibleKey(pool: pool, gpuType: gpuType)
        if let c = eligibleCache[k] { return c }
        let list = nodes.indices.filter { i in
            nodes[i].present && (pool == nil || nodes[i].pool == pool) && (gpuType == nil || nodes[i].gpuType == gpuType)
        }
        eligibleCache[k] = list
        return list
    }

    /// How many replicas of `per` fit on node `n` now (at most `cap`).
    @inline(__always) func replicasFitting(_ n: Int, _ per: [Int64], gpus: Int, cap: Int) -> Int {
        var k = cap
        if gpus > 0 { k = min(k, nodes[n].freeGPUs / gpus) }
        if k == 0 { return 0 }
        // Slot 0 is the GPU count, handled above; a request naming no resources has no slots.
        for r in per.indices.dropFirst() where per[r] > 0 {
            guard at(nodes[n].limited, r) else { continue }
            let free = at(nodes[n].capacity, r) - at(nodes[n].allocated, r)
            k = min(k, free <= 0 ? 0 : Int(free / per[r]))
            if k == 0 { return 0 }
        }
        return k
    }

    enum PlacementFailure: Error { case noMatchingNode(String), noRoom(String) }

    /// All replicas on nodes or nothing. With specifiedNodes, replica i goes to the i-th
    /// listed node. Otherwise: a node that takes every remaining replica if there is one
    /// (the fullest such node), else the node taking the most replicas (fullest first on a
    /// tie) — fewest nodes per workload, then bin-packing. GPU indices: lowest free first.
    func place(_ id: Int) -> Result<(assignments: [ReplicaAssignment], nodeIdx: [Int]), PlacementFailure> {
        let w = workloads[id]
        let n = w.request.replicas
        let g = w.gpusPerReplica
        let per = w.perReplica
        let pool = queues[w.queue].pool
        var chosen: [(node: Int, count: Int)] = []
        if !w.request.specifiedNodes.isEmpty {
            // Validation refuses a node named twice; through the API it takes as many replicas.
            var wanted: [String: Int] = [:]
            for name in w.request.specifiedNodes { wanted[name, default: 0] += 1 }
            for name in w.request.specifiedNodes {
                guard let i = nodeIndex[name], nodes[i].present else { return .failure(.noMatchingNode("specified node \"\(name)\" does not exist")) }
                if pool != nil && nodes[i].pool != pool { return .failure(.noMatchingNode("specified node \"\(name)\" is not in resource pool \"\(pool!)\"")) }
                if let t = w.request.gpuType, nodes[i].gpuType != t { return .failure(.noMatchingNode("specified node \"\(name)\" has no \(t) GPUs")) }
                if !nodes[i].schedulable { return .failure(.noMatchingNode("specified node \"\(name)\" is unschedulable or not ready")) }
                let k = wanted[name] ?? 1
                if replicasFitting(i, per, gpus: g, cap: k) < k { return .failure(.noRoom("specified node \"\(name)\" has no room for a replica (\(describe(w)) each)")) }
                chosen.append((i, 1))
            }
        } else {
            let candidates = eligible(pool: pool, gpuType: w.request.gpuType)
            var fits: [(node: Int, k: Int, free: Int)] = []
            var total = 0, anySchedulable = false
            for i in candidates where nodes[i].schedulable {
                anySchedulable = true
                let k = replicasFitting(i, per, gpus: g, cap: n)
                if k > 0 { fits.append((i, k, nodes[i].freeGPUs)); total += k }
            }
            if !anySchedulable { return .failure(.noMatchingNode("no schedulable node matches (\(constraints(w)))")) }
            if total < n { return .failure(.noRoom("no room on the nodes for \(n) replica\(n == 1 ? "" : "s") of \(describe(w)) (\(constraints(w)))")) }
            var remaining = n
            while remaining > 0 {
                var best = -1
                for (j, f) in fits.enumerated() where f.k >= remaining {
                    if best < 0 || f.free < fits[best].free || (f.free == fits[best].free && f.node < fits[best].node) { best = j }
                }
                if best < 0 {
                    for (j, f) in fits.enumerated() where f.k > 0 {
                        if best < 0 || f.k > fits[best].k || (f.k == fits[best].k && (f.free < fits[best].free || (f.free == fits[best].free && f.node < fits[best].node))) { best = j }
                    }
                }
                let take = min(remaining, fits[best].k)
                chosen.append((fits[best].node, take))
                remaining -= take
                fits[best].k = 0
            }
        }
        var assignments: [ReplicaAssignment] = []
        var nodeIdx: [Int] = []
        var rank = 0
        // Per node, where the GPU search goes on (a node may appear in several chunks).
        var nextIndex: [Int: Int] = [:]
        for (node, count) in chosen {
            var next = nextIndex[node] ?? 0
            defer { nextIndex[node] = next }
            for _ in 0..<count {
                var gpus: [Int] = []
                gpus.reserveCapacity(g)
                while gpus.count < g && next < nodes[node].gpuCount {
                    if nodes[node].gpuUsed[next] == 0 { gpus.append(next) }
                    next += 1
                }
                // freeGPUs counts the unused indices, so this cannot fall short; refuse if it does.
                if gpus.count < g { return .failure(.noRoom("node \"\(nodes[node].name)\" has fewer free GPUs than counted")) }
                assignments.append(ReplicaAssignment(rank: rank, node: nodes[node].name, gpus: gpus))
                nodeIdx.append(node)
                rank += 1
            }
        }
        return .success((assignments, nodeIdx))
    }

    func describe(_ w: WorkloadEntry) -> String {
        var parts: [String] = []
        for r in 0..<w.perReplica.count where w.perReplica[r] > 0 { parts.append("\(amountText(w.perReplica[r], slot: r)) \(slots.names[r])") }
        return parts.isEmpty ? "no resources" : parts.joined(separator: ", ")
    }

    func constraints(_ w: WorkloadEntry) -> String {
        var c: [String] = []
        if let p = queues[w.queue].pool { c.append("pool \(p)") } else { c.append("any pool") }
        if let t = w.request.gpuType { c.append("gpuType \(t)") }
        return c.joined(separator: ", ")
    }

    /// GPUs free on the schedulable nodes a workload may use.
    func freeGPUs(for id: Int) -> Int {
        let w = workloads[id]
        if !w.request.specifiedNodes.isEmpty {
            return w.request.specifiedNodes.reduce(0) { s, name in
                guard let i = nodeIndex[name], nodes[i].present, nodes[i].schedulable else { return s }
                return s + nodes[i].freeGPUs
            }
        }
        var s = 0
        for i in eligible(pool: queues[w.queue].pool, gpuType: w.request.gpuType) where nodes[i].schedulable { s += nodes[i].freeGPUs }
        return s
    }
}
