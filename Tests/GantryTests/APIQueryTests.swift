import Testing
import GantryAPI
@testable import GantryServer

// Builders for the query tests: workloads with the fields the filters read.

func queryWorkload(_ name: String, ns: String = "team-a", queue: String = "default", type: WorkloadType = .job, priority: Int = 0,
                   gpus: Int64 = 0, replicas: Int = 1, created: Int64 = 1000, phase: WorkloadPhase? = .pending, started: Int64? = nil,
                   ended: Int64? = nil, user: String = "", labels: [String: String] = [:], description: String = "",
                   owner: Owner = .api) -> APIObject {
    var meta = ObjectMeta(name: name, namespace: ns)
    meta.uid = "uid-\(ns)-\(name)"
    meta.creationTimestamp = Timestamp(seconds: created)
    meta.labels = labels
    if !user.isEmpty { meta.annotations[APIObject.submitterAnnotation] = user }
    var spec = WorkloadSpec()
    spec.queue = queue; spec.type = type; spec.priority = priority; spec.replicas = replicas; spec.description = description
    spec.command = "python train.py"
    if gpus > 0 { spec.resources["gpu"] = Quantity(units: gpus) }
    let object = ManifestObject(meta: meta, spec: .workload(spec), source: SourceRef(file: "jobs.yaml", line: 3, index: 0))
    var status: ObjectStatus?
    if let phase {
        var s = WorkloadStatus()
        s.phase = phase
        s.startTime = started.map { Timestamp(seconds: $0) }
        s.endTime = ended.map { Timestamp(seconds: $0) }
        status = .workload(s)
    }
    return APIObject(object: object, status: status, owner: owner)
}

/// A small fleet with distinct values for every filter.
let queryFleet: [APIObject] = [
    queryWorkload("alpha", ns: "team-a", queue: "research", type: .pytorchJob, priority: 1, gpus: 8, created: 100, phase: .running,
                  started: 150, user: "alice", labels: ["app": "llm", "tier": "gold"], description: "Llama fine-tune"),
    queryWorkload("beta", ns: "team-a", queue: "research", type: .job, priority: 0, gpus: 2, created: 200, phase: .succeeded,
                  started: 210, ended: 300, user: "bob", labels: ["app": "cv"], description: "ResNet sweep"),
    queryWorkload("gamma", ns: "team-b", queue: "prod", type: .deployment, priority: 2, gpus: 16, replicas: 2, created: 300, phase: .pending,
                  user: "alice", labels: ["app": "llm"], description: "serving"),
    queryWorkload("delta", ns: "team-b", queue: "prod", type: .job, priority: -1, gpus: 0, created: 400, phase: nil, description: "no status yet"),
    queryWorkload("epsilon", ns: "team-c", queue: "default", type: .mpiJob, priority: 0, gpus: 4, created: 500, phase: .failed,
                  started: 510, ended: 520, user: "carol", description: "hello, world"),
]

func names(_ items: [APIObject]) -> [String] { items.map(\.object.meta.name) }

func runQuery(_ q: [(String, String)], _ items: [APIObject] = queryFleet) throws -> WorkloadPage {
    try WorkloadQuery.parse(q).apply(items)
}

/// The field of the 400 a query gets, or nil when it parses.
func badField(_ q: [(String, String)]) -> String? {
    do { _ = try WorkloadQuery.parse(q); return nil } catch {
        #expect(error.status == 400)
        return error.field ?? "<none>"
    }
}

@Suite(.timeLimit(.minutes(1))) struct APIQueryListTests {
    @Test func defaults() throws {
        let q = try WorkloadQuery.parse([])
        #expect(q.limit == 50 && q.offset == 0 && q.fields == nil && !q.includeDeleted)
        let page = try q.apply(queryFleet)
        #expect(page.totalCount == 5 && page.next == nil && page.offset == 0 && page.limit == 50)
        // Default order: namespace, then name.
        #expect(names(page.items) == ["alpha", "beta", "delta", "gamma", "epsilon"])
    }

    @Test func emptyList() throws {
        let page = try runQuery([("phase", "Running"), ("sortBy", "gpus")], [])
        #expect(page.items.isEmpty && page.totalCount == 0 && page.next == nil)
        #expect(try WorkloadQuery.parse([("offset", "40")]).apply([]).items.isEmpty)
    }

    static let simpleFilters: [([(String, String)], [String])] = [
        ([("phase", "running")], ["alpha"]),
        ([("phase", "Running,SUCCEEDED")], ["alpha", "beta"]),
        ([("phase", "Pending")], ["delta", "gamma"]),               // no status reads as Pending
        ([("status", "failed")], ["epsilon"]),
        ([("type", "pytorchjob,MPIJob")], ["alpha", "epsilon"]),
        ([("kind", "Deployment")], ["gamma"]),
        ([("queue", "prod")], ["delta", "gamma"]),
        ([("namespace", "team-a,team-c")], ["alpha", "beta", "epsilon"]),
        ([("user", "alice")], ["alpha", "gamma"]),
        ([("user", "nobody")], []),
        ([("name", "ETA")], ["beta"]),                            // contains, ignoring case
        ([("name", "mm")], ["gamma"]),
        ([("description", "llama")], ["alpha"]),
        ([("labels", "app=llm")], ["alpha", "gamma"]),
        ([("labels", "app=llm,tier!=gold")], ["gamma"]),
        ([("labels", "app in (cv, llm),!tier")], ["beta", "gamma"]),
        ([("since", "1970-01-01T00:03:20Z")], ["beta", "delta", "gamma", "epsilon"]),
        ([("until", "300")], ["alpha", "beta", "gamma"]),
        ([("startedAfter", "200")], ["beta", "epsilon"]),
        ([("startedBefore", "200")], ["alpha"]),
        ([("completedAfter", "310")], ["epsilon"]),
        ([("completedBefore", "1970-01-01")], []),
        ([("phase", "running"), ("queue", "prod")], []),
        ([("name", "")], ["alpha", "beta", "delta", "gamma", "epsilon"]),
    ]
    @Test(arguments: simpleFilters)
    func filters(query: [(String, String)], expected: [String]) throws {
        #expect(names(try runQuery(query).items) == expected)
        #expect(try runQuery(query).totalCount == expected.count)
    }

    static let filterBy: [(String, [String])] = [
        ("phase==Running", ["alpha"]),
        ("phase!=running", ["beta", "delta", "gamma", "epsilon"]),
        ("status==Pending", ["delta", "gamma"]),
        ("gpus>=8", ["alpha", "gamma"]),
        ("allocatedGPU>=2,allocatedGPUs<=8", ["alpha", "beta", "epsilon"]),
        ("phase==Running,gpus>=8", ["alpha"]),
        ("priority==highest", ["gamma"]),
        ("priority<=0", ["beta", "delta", "epsilon"]),
        ("priority!=0", ["alpha", "delta", "gamma"]),
        ("name!=alpha", ["beta", "delta", "gamma", "epsilon"]),
        ("name=@lt", ["delta"]),
        ("name!@a", ["epsilon"]),
        ("name=^ga", ["gamma"]),
        ("name=$ta", ["beta", "delta"]),
        ("name<=beta", ["alpha", "beta"]),
        ("name>=e", ["gamma", "epsilon"]),
        ("namespace==team-b", ["delta", "gamma"]),
        ("queue=^res", ["alpha", "beta"]),
        ("submittedBy==alice", ["alpha", "gamma"]),
        ("user==", ["delta"]),
        ("type==pytorchjob", ["alpha"]),
        ("type=@job", ["alpha", "beta", "delta", "epsilon"]),
        ("createdAt>=1970-01-01T00:05:00Z", ["delta", "gamma", "epsilon"]),
        ("createdAt<=1970-01-01T00:01:40+00:00", ["alpha"]),
        ("createdAt>=2021-01-01", []),
        ("startedAt>=1970-01-01T00:02:30Z", ["alpha", "beta", "epsilon"]),
        ("startedAt!=1970-01-01T00:02:30Z", ["beta", "delta", "gamma", "epsilon"]),  // missing dates match !=
        ("completedAt<=1970-01-01T00:05:00Z", ["beta"]),
        ("description==hello, world", ["epsilon"]),                  // a value with a comma
        ("description=@hello,world", []),
        ("description=@lo, wo,gpus>=1", ["epsilon"]),
    ]
    @Test(arguments: filterBy)
    func filterByOperators(filter: String, expected: [String]) throws {
        #expect(names(try runQuery([("filterBy", filter)]).items) == expected)
    }

    @Test func repeatedFilterByParametersAllApply() throws {
        #expect(names(try runQuery([("filterBy", "gpus>=2"), ("filterBy", "namespace==team-a")]).items) == ["alpha", "beta"])
    }

    static let sorts: [(String, String?, [String])] = [
        ("name", nil, ["alpha", "beta", "delta", "epsilon", "gamma"]),
        ("name", "desc", ["gamma", "epsilon", "delta", "beta", "alpha"]),
        ("createdAt", "desc", ["epsilon", "delta", "gamma", "beta", "alpha"]),
        ("createdAt", "asc", ["alpha", "beta", "gamma", "delta", "epsilon"]),
        ("startedAt", "asc", ["alpha", "beta", "epsilon", "delta", "gamma"]),       // not started: last
        ("startedAt", "desc", ["epsilon", "beta", "alpha", "delta", "gamma"]),      // still last
        ("completedAt", "desc", ["epsilon", "beta", "alpha", "delta", "gamma"]),
        ("gpus", "desc", ["gamma", "alpha", "epsilon", "beta", "delta"]),
        ("priority", "asc", ["delta", "beta", "epsilon", "alpha", "gamma"]),        // ties by namespace, name
        ("phase", "asc", ["epsilon", "delta", "gamma", "alpha", "beta"]),           // alphabetical phases
        ("type", "asc", ["gamma", "beta", "delta", "epsilon", "alpha"]),
        ("queue", "asc", ["epsilon", "delta", "gamma", "alpha", "beta"]),
        ("namespace", "desc", ["epsilon", "delta", "gamma", "alpha", "beta"]),
        ("user", "asc", ["delta", "alpha", "gamma", "beta", "epsilon"]),
        ("allocatedGPU", "asc", ["delta", "beta", "epsilon", "alpha", "gamma"]),
    ]
    @Test(arguments: sorts)
    func sorting(by: String, order: String?, expected: [String]) throws {
        var q = [("sortBy", by)]
        if let order { q.append(("sortOrder", order)) }
        #expect(names(try runQuery(q).items) == expected)
        // The bounded-heap selection (a page much smaller than the matches) agrees with the full sort.
        for limit in 1...4 {
            let page = try runQuery(q + [("limit", String(limit))])
            #expect(names(page.items) == Array(expected.prefix(limit)))
        }
    }

    @Test func pagingWithMarkers() throws {
        let base: [(String, String)] = [("sortBy", "createdAt"), ("limit", "2")]
        let first = try runQuery(base)
        #expect(names(first.items) == ["alpha", "beta"] && first.totalCount == 5)
        let m1 = try #require(first.next)
        let second = try runQuery(base + [("continue", m1)])
        #expect(names(second.items) == ["gamma", "delta"] && second.offset == 2)
        let m2 = try #require(second.next)
        // seed 004's name for it works too.
        let third = try runQuery([("sortBy", "createdAt"), ("maxKeys", "2"), ("marker", m2)])
        #expect(names(third.items) == ["epsilon"] && third.next == nil)
        // The same marker under another sort or filter: 400 naming it.
        #expect(badField([("sortBy", "name"), ("continue", m1)]) == "continue")
        #expect(badField([("sortBy", "createdAt"), ("phase", "Running"), ("continue", m1)]) == "continue")
        for garbage in ["x", "!!!", "djE6Mjp6eno", String(repeating: "A", count: 500), "djE6LTE6MA"] {
            #expect(badField([("sortBy", "createdAt"), ("continue", garbage)]) == "continue")
        }
        // offset/limit without markers.
        let page = try runQuery([("sortBy", "name"), ("offset", "3"), ("limit", "10")])
        #expect(names(page.items) == ["epsilon", "gamma"] && page.next == nil && page.offset == 3)
        let beyond = try runQuery([("offset", "99")])
        #expect(beyond.items.isEmpty && beyond.totalCount == 5 && beyond.next == nil)
    }

    @Test func fieldsSelection() throws {
        let q = try WorkloadQuery.parse([("fields", "id,name,status,gpus,user,acceptTime,finishTime,startedAt"), ("name", "beta")])
        let page = try q.apply(queryFleet)
        let item = try #require(page.items.first)
        let v = try ObjectView.fields(item, try #require(q.fields))
        #expect(v.members?.map(\.key) == ["id", "name", "status", "gpus", "user", "acceptTime", "finishTime", "startedAt"])
        #expect(v["id"] == .string("uid-team-a-beta"))
        #expect(v["status"] == .string("Succeeded"))
        #expect(v["gpus"] == .int(2))
        #expect(v["user"] == .string("bob"))
        #expect(v["acceptTime"] == .string("1970-01-01T00:03:20Z"))
        #expect(v["finishTime"] == .string("1970-01-01T00:05:00Z"))
        // seed 004's parameter name and a field list entry it does not know.
        #expect(try WorkloadQuery.parse([("fieldlist", "name,runtime")]).fields == ["name", "runtime"])
        #expect(badField([("fields", "name,flavour")]) == "fields")
        #expect(throws: APIError.self) { try ObjectView.fields(item, ["nope"]) }
        // Every advertised field has a value.
        for f in ObjectView.workloadFields { #expect(ObjectView.field(f, of: item) != nil) }
    }

    @Test func runtimeFieldsFollowTheReplicaCount() throws {
        var one = queryWorkload("one", phase: .running)
        var s = WorkloadStatus(); s.phase = .running
        s.replicas = [ReplicaStatus(name: "one-worker-0", rank: 0, node: "n1", phase: "Running", gpus: [0, 1])]
        one.status = .workload(s)
        let v = try ObjectView.fields(one, ["runtime", "distributedRuntime"])
        #expect(v["runtime"]?["node"] == .string("n1"))
        #expect(v["distributedRuntime"] == .null)
    }

    static let badQueries: [([(String, String)], String)] = [
        ([("bogus", "1")], "bogus"),
        ([("phase", "Sleeping")], "phase"),
        ([("type", "CronJob")], "type"),
        ([("status", "x")], "status"),
        ([("queue", ",")], "queue"),
        ([("labels", "a in (b")], "labels"),
        ([("labels", "=x")], "labels"),
        ([("since", "yesterday")], "since"),
        ([("completedBefore", "2021-13-01")], "completedBefore"),
        ([("filterBy", "gpus>8")], "filterBy"),
        ([("filterBy", "phase==Running,gpus>8")], "filterBy"),
        ([("filterBy", "color==red")], "filterBy"),
        ([("filterBy", "==x")], "filterBy"),
        ([("filterBy", "gpus>=many")], "filterBy"),
        ([("filterBy", "gpus=@1")], "filterBy"),
        ([("filterBy", "createdAt=^2021")], "filterBy"),
        ([("filterBy", "createdAt>=soon")], "filterBy"),
        ([("filterBy", "")], "filterBy"),
        ([("sortBy", "color")], "sortBy"),
        ([("sortOrder", "up")], "sortOrder"),
        ([("order", "up")], "order"),
        ([("offset", "-1")], "offset"),
        ([("offset", "1e3")], "offset"),
        ([("offset", "99999999999999999999")], "offset"),
        ([("limit", "0")], "limit"),
        ([("limit", "1001")], "limit"),
        ([("limit", "ten")], "limit"),
        ([("continue", "garbage")], "continue"),
        ([("fields", "name,bogus")], "fields"),
        ([("deleted", "maybe")], "deleted"),
    ]
    @Test(arguments: badQueries)
    func badInputsAre400NamingTheParameter(query: [(String, String)], field: String) {
        #expect(badField(query) == field)
    }

    @Test func restrictingNamespacesKeepsMarkers() throws {
        var q = try WorkloadQuery.parse([("sortBy", "name"), ("limit", "1")])
        q.restrict(namespaces: ["team-b", "team-c"])
        let page = try q.apply(queryFleet)
        #expect(names(page.items) == ["delta"] && page.totalCount == 3)
        var resumed = try WorkloadQuery.parse([("sortBy", "name"), ("limit", "1"), ("continue", try #require(page.next))])
        resumed.restrict(namespaces: ["team-b", "team-c"])
        #expect(names(try resumed.apply(queryFleet).items) == ["epsilon"])
        var all = try WorkloadQuery.parse([])
        all.restrict(namespaces: ["*"])
        all.restrict(namespaces: nil)
        #expect(all.count(queryFleet) == 5)
    }

    @Test func deletedFlag() throws {
        #expect(try WorkloadQuery.parse([("deleted", "true")]).includeDeleted)
        #expect(try !WorkloadQuery.parse([("deleted", "false")]).includeDeleted)
    }

    @Test func matchingIgnoresPaging() throws {
        let q = try WorkloadQuery.parse([("filterBy", "gpus>=2"), ("limit", "1")])
        #expect(names(q.matching(queryFleet)) == ["alpha", "beta", "gamma", "epsilon"])
    }

    /// Large lists go through the shared index cache: results follow the array's contents
    /// (a changed array is new storage), and a prepared index answers like the array.
    @Test func indexCacheFollowsTheArray() throws {
        var fleet: [APIObject] = []
        for i in 0..<(WorkloadIndex.cacheThreshold + 500) {
            let queue = i % 2 == 0 ? "even" : "odd"
            let phase: WorkloadPhase = i % 5 == 0 ? .running : .pending
            fleet.append(queryWorkload("w\(i)", ns: "ns\(i % 3)", queue: queue, gpus: Int64(i % 9), created: Int64(i), phase: phase))
        }
        let running = try WorkloadQuery.parse([("phase", "Running")])
        let byGPUs = try WorkloadQuery.parse([("filterBy", "gpus>=8"), ("queue", "even"), ("sortBy", "createdAt"), ("sortOrder", "desc"), ("limit", "3")])
        #expect(try running.apply(fleet).totalCount == 305)
        #expect(names(try byGPUs.apply(fleet).items) == ["w1520", "w1502", "w1484"])   // second query: more columns, same storage
        #expect(try running.apply(fleet).totalCount == 305)
        #expect(running.count(fleet) == 305 && running.matching(fleet).count == 305)
        fleet[0] = queryWorkload("w0", ns: "ns0", phase: .failed)
        #expect(try running.apply(fleet).totalCount == 304)
        fleet.append(queryWorkload("late", queue: "even", gpus: 8, created: 99_999, phase: .running))
        #expect(try running.apply(fleet).totalCount == 305)
        #expect(names(try byGPUs.apply(fleet).items) == ["late", "w1520", "w1502"])
        let index = WorkloadIndex(fleet)
        #expect(try byGPUs.apply(index).items.map(\.key) == (try byGPUs.apply(fleet).items.map(\.key)))
        #expect(running.count(index) == 305 && running.matches(fleet[5]) && !running.matches(fleet[1]))
    }

    @Test func nonWorkloadsNeverTrap() throws {
        var meta = ObjectMeta(name: "q1")
        meta.creationTimestamp = Timestamp(seconds: 5)
        let queue = APIObject(object: ManifestObject(meta: meta, spec: .queue(QueueSpec()), source: SourceRef(file: "q.yaml", line: 1, index: 0)),
                              status: .queue(QueueStatus()), owner: .manifest(file: "q.yaml"))
        for q in [[("sortBy", "gpus")], [("filterBy", "queue==x")], [("description", "x")], [("sortBy", "startedAt")]] {
            _ = try runQuery(q, queryFleet + [queue])
        }
    }
}

@Suite(.timeLimit(.minutes(1))) struct APIQueryLabelSelectorTests {
    static let cases: [(String, [String: String], Bool)] = [
        ("", [:], true),
        ("a=b", ["a": "b"], true),
        ("a==b", ["a": "c"], false),
        ("a!=b", [:], true),
        ("a!=b", ["a": "b"], false),
        ("a in (x, y)", ["a": "y"], true),
        ("a in (x,y)", [:], false),
        ("a notin (x,y)", [:], true),
        ("a notin (x,y)", ["a": "x"], false),
        ("a", ["a": ""], true),
        ("!a", ["a": "1"], false),
        ("!a", [:], true),
        ("example.com/team=ml, tier", ["example.com/team": "ml", "tier": "1"], true),
        ("a=", ["a": ""], true),
    ]
    @Test(arguments: cases)
    func matches(selector: String, labels: [String: String], expected: Bool) throws {
        #expect(try LabelSelector.parse(selector).matches(labels) == expected)
    }

    @Test(arguments: ["a in (x", "a)", "=b", "a==b=c!", "a in x", "a between (x)", "a b", "a=b,,c", "-a", "a=-b", "a in ((x))", "!", "a=" + String(repeating: "x", count: 64)])
    func rejects(selector: String) {
        do { _ = try LabelSelector.parse(selector); Issue.record("\(selector) parsed") } catch {
            #expect(error.status == 400 && error.field == "labels")
        }
        do { _ = try LabelSelector.parse(selector, field: "selector"); Issue.record("\(selector) parsed") } catch {
            #expect(error.field == "selector")
        }
    }
}
