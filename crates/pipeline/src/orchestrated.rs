//! `moe_orchestrated`: a planner splits the user's task into at most four questions; experts
//! answer them in parallel; a merger writes one answer from theirs; a judge scores it and may
//! ask for one re-plan — all under one deadline. Then the answer, streamed: the profile's
//! tool-capable expert answers the request as sent (system prompt, tools, tool calls and all)
//! with the merged findings added to the task's turn.
//!
//! Sub-calls get the task and a little context, never the client's system prompt or tool
//! catalogue, so small-context local models can plan, answer and judge. The plan and the
//! verdict are forced tool calls under a JSON schema (constrained decoding on local experts,
//! checked with one retry on remote ones); a plan that stays unusable falls back to a direct
//! answer. Progress streams as a thinking block when the request enables thinking, and always
//! as steps in the request's trace. Short utility calls take the direct path. Dropping the
//! stream (a client that left) cancels every sub-call.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use moe_sovereign_anthropic::{ContentBlock, MessageContent, MessagesRequest, Role, Thinking};
use moe_sovereign_experts::{
    Expert, ExpertError, ExpertEvent, ExpertRequest, ExpertStream, Step, Yielder, generator,
};
use serde_json::{Value, json};

use moe_sovereign_graph::Graph;
use moe_sovereign_mcp::{Mcp, McpTool};

use crate::call::{self, Reply};
use crate::knowledge;
use crate::search::WebSearch;
use crate::tools::{self, ToolRun};

/// How long one orchestrated request may take before it answers with what it has.
pub const DEADLINE: Duration = Duration::from_secs(300);
/// Sub-tasks a plan may have.
pub const MAX_TASKS: usize = 4;
/// A request this small with no tools is a utility call (a title, a topic): direct path.
const UTILITY_MAX_TOKENS: u64 = 256;
/// Output budget of each expert's answer, and of the merged answer.
const EXPERT_TOKENS: u64 = 512;
const MERGE_TOKENS: u64 = 1024;
/// A judge's score at or below which the task is planned again (once), whatever it says.
const REPLAN_SCORE: u64 = 3;
/// How much of the previous assistant turn the sub-calls see.
const CONTEXT_CHARS: usize = 1500;
/// Findings kept for the tool-loop turns that follow a task (per session and task).
const FINDINGS_KEPT: usize = 32;

const PLANNER: &str = "Split the task into 1 to 4 self-contained questions that together answer it, each with the category that fits it best. A simple task is one question: the task itself. Call the tool `plan`.";
/// Added to the planner's instructions when MCP tools are configured.
const PLANNER_TOOLS: &str = "A question one of the tools below answers exactly gets that tool as mcp_tool, with its arguments as mcp_args.";
const EXPERT: &str = "Answer the question accurately and concisely. If you are unsure, say so.";
const MERGER: &str = "Combine the answers below into one accurate, concise answer to the question. Keep what is correct, resolve disagreements, leave out repetition. Write only the answer.";
const JUDGE: &str = "Review the answer to the question. Score it from 1 (useless) to 10 (complete and correct), say what is missing, and whether the question should be worked on again. Call the tool `verdict`.";

/// An expert the planner can assign sub-tasks to, by its tags.
#[derive(Clone)]
pub struct Member {
    /// The expert.
    pub expert: Arc<dyn Expert>,
    /// Its capabilities (`code`, `math`, …).
    pub tags: Vec<String>,
}

/// The orchestrated profile.
pub struct Orchestrated(Arc<Inner>);

struct Inner {
    name: String,
    lead: Arc<dyn Expert>,
    members: Vec<Member>,
    answerer: Arc<dyn Expert>,
    deadline: Duration,
    findings: Mutex<HashMap<u64, (Instant, String)>>,
    search: Option<WebSearch>,
    mcp: Option<Mcp>,
    graph: Option<Arc<Graph>>,
}

impl Orchestrated {
    /// `lead` plans, merges and judges (and answers sub-tasks no member is tagged for);
    /// `members` take sub-tasks by tag; `answerer` gives the final turn of tool-bearing
    /// requests (and answers directly when orchestration does not apply). Each request has
    /// `deadline` ([`DEADLINE`] in production).
    pub fn new(
        lead: Arc<dyn Expert>,
        members: Vec<Member>,
        answerer: Arc<dyn Expert>,
        deadline: Duration,
    ) -> Self {
        Self(Arc::new(Inner {
            name: lead.name().to_owned(),
            lead,
            members,
            answerer,
            deadline,
            findings: Mutex::default(),
            search: None,
            mcp: None,
            graph: None,
        }))
    }

    /// The same with web search for research tasks (`[search] searxng_url`).
    pub fn with_search(mut self, search: Option<WebSearch>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.search = search;
        }
        self
    }

    /// The same with the tools of MCP servers (`[[mcp_servers]]`) for the planner and experts.
    pub fn with_mcp(mut self, mcp: Option<Mcp>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.mcp = mcp.filter(|m| !m.is_empty());
        }
        self
    }

    /// The same with a per-key knowledge graph: facts learnt from each answer, recalled for
    /// later requests of the same key.
    pub fn with_graph(mut self, graph: Option<Arc<Graph>>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.graph = graph;
        }
        self
    }
}

/// What every stage of one orchestrated request works from.
struct Job {
    /// The client's model id.
    model: String,
    /// The user's task.
    task: String,
    /// The previous answer, shortened.
    context: String,
    /// Facts the knowledge graph holds on the task, one per line (empty when none).
    known: String,
    /// The MCP tools on offer.
    tools: Vec<McpTool>,
    /// When it must be done.
    deadline: Instant,
}

impl Job {
    /// The task's background for a sub-call: known facts and the previous answer.
    fn background(&self) -> String {
        let mut user = String::new();
        if !self.known.is_empty() {
            user.push_str(&format!(
                "Known facts (remembered from earlier requests; may be outdated):\n{}\n\n",
                self.known
            ));
        }
        if !self.context.is_empty() {
            user.push_str(&format!(
                "Context (the previous answer):\n{}\n\n",
                self.context
            ));
        }
        user
    }

    fn tool_names(&self) -> Vec<String> {
        self.tools.iter().map(|t| t.name.clone()).collect()
    }
}

impl Inner {
    fn categories(&self) -> Vec<String> {
        let mut categories = vec!["general".to_owned()];
        if self.search.is_some() {
            categories.push("research".to_owned());
        }
        for tag in self.members.iter().flat_map(|m| &m.tags) {
            if tag != "reasoning" && !categories.contains(tag) {
                categories.push(tag.clone());
            }
        }
        categories
    }

    fn expert_for(&self, category: &str) -> Arc<dyn Expert> {
        self.members
            .iter()
            .find(|m| m.tags.iter().any(|t| t == category))
            .map_or_else(|| Arc::clone(&self.lead), |m| Arc::clone(&m.expert))
    }

    fn remember(&self, key: u64, findings: &str) {
        if let Ok(mut kept) = self.findings.lock() {
            if kept.len() >= FINDINGS_KEPT
                && let Some(oldest) = kept.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| *k)
            {
                kept.remove(&oldest);
            }
            kept.insert(key, (Instant::now(), findings.to_owned()));
        }
    }

    fn recall(&self, key: u64) -> Option<String> {
        self.findings
            .lock()
            .ok()
            .and_then(|kept| kept.get(&key).map(|(_, f)| f.clone()))
    }
}

/// A sub-task of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// What to do.
    pub task: String,
    /// Which kind of expert.
    pub category: String,
    /// What to search the web for first (only when web search is on).
    pub search_query: Option<String>,
    /// The MCP tool that answers it, called directly (only when MCP tools are configured).
    pub mcp_tool: Option<String>,
    /// That tool's arguments.
    pub mcp_args: Option<Value>,
}

/// Where in the request the user's task is: the last user turn with text a person wrote.
fn task_turn(body: &MessagesRequest) -> Option<(usize, String)> {
    body.messages
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, m)| m.role == Role::User)
        .map(|(i, m)| (i, call::user_text(m)))
        .find(|(_, text)| !text.trim().is_empty())
}

/// The previous assistant turn's text before `index`, shortened, as context for sub-calls.
fn context_before(body: &MessagesRequest, index: usize) -> String {
    let text = body.messages[..index]
        .iter()
        .rev()
        .find(|m| m.role == Role::Assistant)
        .map(|m| m.content.text())
        .unwrap_or_default();
    let mut cut: String = text.chars().rev().take(CONTEXT_CHARS).collect();
    cut = cut.chars().rev().collect();
    cut
}

fn key_of(session: Option<&str>, task: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    session.hash(&mut hasher);
    task.hash(&mut hasher);
    hasher.finish()
}

fn plan_schema(categories: &[String], search: bool, tools: &[String]) -> Value {
    let mut item = json!({
        "type": "object",
        "properties": {
            "task": {"type": "string"},
            "category": {"type": "string", "enum": categories}
        },
        "required": ["task", "category"],
        "additionalProperties": false
    });
    if search {
        item["properties"]["search_query"] = json!({"type": "string"});
    }
    if !tools.is_empty() {
        item["properties"]["mcp_tool"] = json!({"type": "string", "enum": tools});
        item["properties"]["mcp_args"] = json!({"type": "object"});
    }
    json!({
        "type": "object",
        "properties": {"tasks": {"type": "array", "minItems": 1, "maxItems": MAX_TASKS, "items": item}},
        "required": ["tasks"],
        "additionalProperties": false
    })
}

fn verdict_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "score": {"type": "integer", "minimum": 1, "maximum": 10},
            "missing": {"type": "string"},
            "replan": {"type": "boolean"}
        },
        "required": ["score", "missing", "replan"],
        "additionalProperties": false
    })
}

/// The plan in a planner's tool input, or why it is unusable; `tools` are the MCP tools a
/// task may name (others are ignored).
pub fn parse_plan(
    input: Option<&Value>,
    categories: &[String],
    tools: &[String],
) -> Result<Vec<Task>, String> {
    let tasks = input
        .and_then(|v| v.get("tasks"))
        .and_then(Value::as_array)
        .ok_or("no `tasks` list")?;
    if tasks.is_empty() || tasks.len() > MAX_TASKS {
        return Err(format!("{} tasks (1 to {MAX_TASKS} allowed)", tasks.len()));
    }
    tasks
        .iter()
        .map(|t| {
            let task = t
                .get("task")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .ok_or("a task without text")?;
            let category = t
                .get("category")
                .and_then(Value::as_str)
                .filter(|c| categories.iter().any(|k| k == c))
                .unwrap_or("general");
            let search_query = t
                .get("search_query")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .map(|q| q.chars().take(300).collect());
            let mcp_tool = t
                .get("mcp_tool")
                .and_then(Value::as_str)
                .filter(|name| tools.iter().any(|k| k == name))
                .map(str::to_owned);
            let mcp_args = mcp_tool
                .as_ref()
                .and_then(|_| t.get("mcp_args"))
                .filter(|a| a.is_object())
                .cloned();
            Ok(Task {
                task: task.chars().take(2000).collect(),
                category: category.to_owned(),
                search_query,
                mcp_tool,
                mcp_args,
            })
        })
        .collect()
}

/// The judge's verdict: score, what is missing, whether to re-plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// 1–10.
    pub score: u64,
    /// What is missing.
    pub missing: String,
    /// Plan again.
    pub replan: bool,
}

/// The verdict in a judge's tool input, if usable.
pub fn parse_verdict(input: Option<&Value>) -> Option<Verdict> {
    let input = input?;
    let score = input
        .get("score")?
        .as_u64()
        .filter(|s| (1..=10).contains(s))?;
    Some(Verdict {
        score,
        missing: input
            .get("missing")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        replan: input
            .get("replan")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// What progress goes where: thinking text when the client asked for thinking, trace steps
/// always.
struct Progress<'a> {
    out: &'a Yielder<Result<ExpertEvent, ExpertError>>,
    show: bool,
    open: bool,
}

impl Progress<'_> {
    /// A line of progress; false when the client left.
    async fn say(&mut self, line: String) -> bool {
        if !self.show {
            return true;
        }
        self.open = true;
        self.out
            .send(Ok(ExpertEvent::Thinking(format!("{line}\n"))))
            .await
    }

    async fn step(&self, stage: &str, expert: &str, outcome: String, ms: u64) -> bool {
        let step = Step {
            stage: stage.into(),
            expert: expert.into(),
            outcome,
            ms,
        };
        self.out.send(Ok(ExpertEvent::Step(step))).await
    }

    /// Ends the thinking block before the answer.
    async fn close(&mut self) -> bool {
        if !self.open {
            return true;
        }
        self.open = false;
        self.out.send(Ok(ExpertEvent::BlockEnd)).await
    }
}

fn tokens(reply: &Reply) -> String {
    format!(
        "{} in / {} out tokens",
        reply.input_tokens, reply.output_tokens
    )
}

fn ms_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// Runs `request` on `expert` unless `deadline` passes first.
async fn run_by(
    expert: &dyn Expert,
    request: ExpertRequest,
    deadline: Instant,
) -> Result<Reply, String> {
    match tokio::time::timeout_at(deadline.into(), call::run(expert, request)).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("the deadline passed".into()),
    }
}

impl Inner {
    /// The plan for the job, asked of the lead (one checked retry).
    async fn plan(
        &self,
        job: &Job,
        feedback: Option<&str>,
        progress: &Progress<'_>,
    ) -> Result<Vec<Task>, String> {
        let categories = self.categories();
        let tool_names = job.tool_names();
        let mut user = job.background();
        user.push_str(&format!(
            "Task:\n{}\n\nCategories: {}",
            job.task,
            categories.join(", ")
        ));
        if self.search.is_some() {
            user.push_str(
                "\nGive a question that needs current facts from the web a search_query.",
            );
        }
        let mut system = PLANNER.to_owned();
        if !job.tools.is_empty() {
            system.push(' ');
            system.push_str(PLANNER_TOOLS);
            user.push_str(&format!("\n\nTools:\n{}", tools::catalogue(&job.tools)));
        }
        if let Some(feedback) = feedback {
            user.push_str(&format!(
                "\n\nA first attempt fell short: {feedback}\nPlan again to cover it."
            ));
        }
        let mut why = String::new();
        for attempt in 0..2 {
            let mut prompt = user.clone();
            if attempt > 0 {
                prompt.push_str(&format!("\n\nYour previous plan was unusable ({why}). Call `plan` with 1 to {MAX_TASKS} tasks."));
            }
            let request = call::forced_tool(
                call::request(&job.model, &system, prompt, 512, 0.0),
                "plan",
                "Submit the plan.",
                plan_schema(&categories, self.search.is_some(), &tool_names),
            );
            let reply = run_by(&*self.lead, request, job.deadline).await?;
            let parsed = parse_plan(reply.tool_input.as_ref(), &categories, &tool_names);
            let outcome = match &parsed {
                Ok(tasks) => format!("{} tasks; {}", tasks.len(), tokens(&reply)),
                Err(why) => format!("unusable plan: {why}; {}", tokens(&reply)),
            };
            progress
                .step("plan", self.lead.name(), outcome, reply.ms)
                .await;
            match parsed {
                Ok(tasks) => return Ok(tasks),
                Err(error) => why = error,
            }
        }
        Err(why)
    }

    /// Every task answered (in parallel) by its tool or its expert, in plan order; failures
    /// left out.
    async fn answer_tasks(
        &self,
        job: &Job,
        tasks: &[Task],
        progress: &mut Progress<'_>,
    ) -> Option<Vec<(Task, String)>> {
        // One task with one model: two samples of it (Self-MoA), at different temperatures.
        let samples: Vec<(usize, f64)> =
            if tasks.len() == 1 && self.members.len() <= 1 && tasks[0].mcp_tool.is_none() {
                vec![(0, 0.2), (0, 0.9)]
            } else {
                tasks.iter().enumerate().map(|(i, _)| (i, 0.3)).collect()
            };
        let mut running = FuturesUnordered::new();
        for (n, (i, temperature)) in samples.iter().copied().enumerate() {
            let task = &tasks[i];
            let expert = self.expert_for(&task.category);
            let said = match &task.mcp_tool {
                Some(tool) => format!("▶ task {} calls the tool {tool}", i + 1),
                None => format!("▶ task {} ({}) on {}", i + 1, task.category, expert.name()),
            };
            if !progress.say(said).await {
                return None;
            }
            let user = job.background();
            // Research first, where web search is on and the plan asks for it.
            let query = self.search.as_ref().and_then(|_| {
                task.search_query
                    .clone()
                    .or_else(|| (task.category == "research").then(|| task.task.clone()))
            });
            if let Some(query) = &query
                && !progress
                    .say(format!("🔎 task {} searches the web: {query}", i + 1))
                    .await
            {
                return None;
            }
            let search = self.search.clone();
            let mcp = self.mcp.clone();
            let task = task.clone();
            let deadline = job.deadline;
            running.push(async move {
                let mut user = user;
                let mut searched = None;
                if let (Some(search), Some(query)) = (search, query) {
                    let start = Instant::now();
                    let found =
                        tokio::time::timeout_at(deadline.into(), search.search(&query)).await;
                    let found = match found {
                        Ok(found) => found,
                        Err(_) => Err("the deadline passed".into()),
                    };
                    if let Ok(found) = &found {
                        user.push_str(&crate::search::as_context(&found.hits));
                        user.push('\n');
                    }
                    searched = Some((found, ms_since(start)));
                }
                let mut runs = Vec::new();
                // A task the plan gave a tool: its result is the answer (exact, and cheap).
                if let (Some(mcp), Some(tool)) = (&mcp, &task.mcp_tool) {
                    let args = task.mcp_args.clone().unwrap_or_else(|| json!({}));
                    let (text, failed, run) = tools::run_tool(mcp, tool, &args).await;
                    runs.push(run);
                    if !failed {
                        let reply = Reply {
                            text: format!("The tool {tool} returned (exact):\n{text}"),
                            ..Reply::default()
                        };
                        return (n, i, expert, Ok(reply), searched, runs);
                    }
                    user.push_str(&format!("The tool {tool} failed: {text}\n\n"));
                }
                user.push_str(&task.task);
                let request = call::request(&job.model, EXPERT, user, EXPERT_TOKENS, temperature);
                let reply = match &mcp {
                    Some(mcp) if !job.tools.is_empty() => {
                        let answered = tokio::time::timeout_at(
                            deadline.into(),
                            tools::run_with_tools(&*expert, request, mcp, &job.tools),
                        )
                        .await
                        .unwrap_or_else(|_| Err("the deadline passed".into()));
                        answered.map(|(reply, used)| {
                            runs.extend(used);
                            reply
                        })
                    }
                    _ => run_by(&*expert, request, deadline).await,
                };
                (n, i, expert, reply, searched, runs)
            });
        }
        let mut answers: Vec<(usize, Task, String)> = Vec::new();
        while let Some((n, i, expert, reply, searched, runs)) = running.next().await {
            if let Some((found, ms)) = searched {
                let (outcome, line) = match found {
                    Ok(found) => {
                        let mut outcome = format!("{} results", found.hits.len());
                        if !found.unresponsive.is_empty() {
                            outcome.push_str(&format!(
                                "; engines not answering: {}",
                                found.unresponsive.join(", ")
                            ));
                        }
                        (outcome.clone(), format!("🔎 task {}: {outcome}", i + 1))
                    }
                    Err(why) => (
                        format!("failed: {why}"),
                        format!("🔎 task {}: the search failed ({why})", i + 1),
                    ),
                };
                let base = self.search.as_ref().map_or("", |s| s.base());
                progress.step("search", base, outcome, ms).await;
                if !progress.say(line).await {
                    return None;
                }
            }
            if !self.report_tools(i, &runs, progress).await {
                return None;
            }
            let ok = match reply {
                Ok(reply) => {
                    let by = if reply.ms == 0 && tasks[i].mcp_tool.is_some() {
                        "its tool".to_owned()
                    } else {
                        expert.name().to_owned()
                    };
                    let said = progress
                        .say(format!(
                            "✓ task {} done by {by} in {}",
                            i + 1,
                            secs(reply.ms)
                        ))
                        .await;
                    if by != "its tool" {
                        progress
                            .step("expert", expert.name(), tokens(&reply), reply.ms)
                            .await;
                    }
                    if !reply.text.trim().is_empty() {
                        answers.push((n, tasks[i].clone(), reply.text));
                    }
                    said
                }
                Err(why) => {
                    let said = progress
                        .say(format!(
                            "✗ task {} on {} failed: {why}",
                            i + 1,
                            expert.name()
                        ))
                        .await;
                    progress
                        .step("expert", expert.name(), format!("failed: {why}"), 0)
                        .await;
                    said
                }
            };
            if !ok {
                return None;
            }
        }
        answers.sort_by_key(|(n, _, _)| *n);
        Some(answers.into_iter().map(|(_, t, a)| (t, a)).collect())
    }

    /// Each tool call of task `i` as a trace step and a progress line; false when the client
    /// left.
    async fn report_tools(&self, i: usize, runs: &[ToolRun], progress: &mut Progress<'_>) -> bool {
        for run in runs {
            let outcome = if run.failed {
                format!("failed: {}", run.outcome)
            } else {
                run.outcome.clone()
            };
            progress.step("tool", &run.name, outcome, run.ms).await;
            let line = format!(
                "🔧 task {}: {} {} in {}",
                i + 1,
                run.name,
                if run.failed { "failed" } else { "answered" },
                secs(run.ms)
            );
            if !progress.say(line).await {
                return false;
            }
        }
        true
    }

    async fn merge(
        &self,
        job: &Job,
        answers: &[(Task, String)],
        progress: &Progress<'_>,
    ) -> Result<Reply, String> {
        let task = &job.task;
        let mut user = String::new();
        if !job.known.is_empty() {
            user.push_str(&format!(
                "Known facts (remembered from earlier requests; may be outdated):\n{}\n\n",
                job.known
            ));
        }
        user.push_str(&format!("Question:\n{task}\n\nAnswers:\n"));
        for (n, (sub, answer)) in answers.iter().enumerate() {
            if sub.task.trim() == task.trim() {
                user.push_str(&format!("\n{}.\n", n + 1));
            } else {
                user.push_str(&format!("\n{}. On \"{}\":\n", n + 1, sub.task));
            }
            user.push_str(answer.trim());
            user.push('\n');
        }
        let mut system = MERGER.to_owned();
        if answers.iter().any(|(t, _)| t.mcp_tool.is_some()) {
            system.push_str(" A tool's result is exact: prefer it over the other answers.");
        }
        let reply = run_by(
            &*self.lead,
            call::request(&job.model, &system, user, MERGE_TOKENS, 0.2),
            job.deadline,
        )
        .await?;
        progress
            .step("merge", self.lead.name(), tokens(&reply), reply.ms)
            .await;
        if reply.text.trim().is_empty() {
            return Err("the merger wrote nothing".into());
        }
        Ok(reply)
    }

    async fn judge(&self, job: &Job, answer: &str, progress: &Progress<'_>) -> Option<Verdict> {
        let user = format!("Question:\n{}\n\nAnswer:\n{answer}", job.task);
        let request = call::forced_tool(
            call::request(&job.model, JUDGE, user, 200, 0.0),
            "verdict",
            "Submit the verdict.",
            verdict_schema(),
        );
        let reply = run_by(&*self.lead, request, job.deadline).await.ok()?;
        let verdict = parse_verdict(reply.tool_input.as_ref());
        let outcome = match &verdict {
            Some(v) => format!(
                "score {}/10{}; {}",
                v.score,
                if v.replan { ", re-plan" } else { "" },
                tokens(&reply)
            ),
            None => format!("unusable verdict; {}", tokens(&reply)),
        };
        progress
            .step("judge", self.lead.name(), outcome, reply.ms)
            .await;
        verdict
    }

    /// What the job starts from: the MCP tools on offer and what the knowledge graph knows of
    /// the task (for the caller's key only).
    async fn prepare(
        &self,
        model: String,
        task: String,
        context: String,
        key_id: Option<&str>,
        progress: &mut Progress<'_>,
    ) -> Option<Job> {
        let deadline = Instant::now() + self.deadline;
        let mut job = Job {
            model,
            task,
            context,
            known: String::new(),
            tools: Vec::new(),
            deadline,
        };
        if let Some(mcp) = &self.mcp {
            let start = Instant::now();
            job.tools = tokio::time::timeout_at(deadline.into(), mcp.tools())
                .await
                .unwrap_or_default();
            let names: Vec<&str> = mcp.configs().map(|c| c.name.as_str()).collect();
            let outcome = format!("{} tools from {}", job.tools.len(), names.join(", "));
            progress
                .step("tools", "mcp", outcome, ms_since(start))
                .await;
        }
        if let (Some(graph), Some(key_id)) = (&self.graph, key_id) {
            let start = Instant::now();
            let query = format!("{}\n{}", job.task, job.context);
            let (known, count) = knowledge::recall(graph, key_id, &query).await;
            job.known = known;
            progress
                .step(
                    "graph",
                    "knowledge graph",
                    format!("{count} facts recalled"),
                    ms_since(start),
                )
                .await;
            if count > 0
                && !progress
                    .say(format!("📚 {count} remembered facts on this task"))
                    .await
            {
                return None;
            }
        }
        Some(job)
    }

    /// Plan → experts → merge → judge (→ one re-plan): the merged answer, or why there is none.
    async fn orchestrate(
        &self,
        job: &Job,
        progress: &mut Progress<'_>,
    ) -> Option<Result<Reply, String>> {
        let mut feedback: Option<String> = None;
        let mut best: Option<(u64, Reply)> = None;
        for round in 0..2 {
            if !progress
                .say(if round == 0 {
                    "Planning…".into()
                } else {
                    "Planning again…".into()
                })
                .await
            {
                return None;
            }
            let tasks = match self.plan(job, feedback.as_deref(), progress).await {
                Ok(tasks) => tasks,
                Err(why) if round == 0 => return Some(Err(format!("no usable plan ({why})"))),
                Err(_) => break,
            };
            let mut listing = format!(
                "Plan ({} task{}):",
                tasks.len(),
                if tasks.len() == 1 { "" } else { "s" }
            );
            for (i, t) in tasks.iter().enumerate() {
                listing.push_str(&format!("\n  {}. [{}] {}", i + 1, t.category, t.task));
                if let Some(tool) = &t.mcp_tool {
                    listing.push_str(&format!(" → {tool}"));
                }
            }
            if !progress.say(listing).await {
                return None;
            }
            let answers = self.answer_tasks(job, &tasks, progress).await?;
            if answers.is_empty() {
                if round == 0 {
                    return Some(Err("no expert answered".into()));
                }
                break;
            }
            if !progress
                .say(format!("Merging {} answers…", answers.len()))
                .await
            {
                return None;
            }
            let merged = match self.merge(job, &answers, progress).await {
                Ok(merged) => merged,
                Err(why) if round == 0 => return Some(Err(why)),
                Err(_) => break,
            };
            let verdict = self.judge(job, &merged.text, progress).await;
            let score = verdict.as_ref().map_or(0, |v| v.score);
            let said = match &verdict {
                Some(v) if v.missing.trim().is_empty() => format!("Judge: {}/10.", v.score),
                Some(v) => format!("Judge: {}/10 — missing: {}", v.score, v.missing.trim()),
                None => "Judge: no usable verdict; keeping the answer.".into(),
            };
            if !progress.say(said).await {
                return None;
            }
            if best.as_ref().is_none_or(|(s, _)| score >= *s) {
                best = Some((score, merged));
            }
            match verdict {
                // The judge asks for it, or scores the answer as a failure: once.
                Some(v)
                    if (v.replan || v.score <= REPLAN_SCORE)
                        && round == 0
                        && Instant::now() < job.deadline =>
                {
                    feedback = Some(if v.missing.trim().is_empty() {
                        format!("the answer scored {}/10", v.score)
                    } else {
                        v.missing
                    });
                }
                _ => break,
            }
        }
        best.map(|(_, merged)| Ok(merged))
    }
}

/// `findings` added to the task's turn of `request` (the conversation before it unchanged).
fn with_findings(request: &ExpertRequest, index: usize, findings: &str) -> ExpertRequest {
    let mut request = request.clone();
    if let Some(message) = request.body.messages.get_mut(index) {
        let mut blocks = message.content.blocks();
        blocks.push(ContentBlock::text(format!(
            "<orchestrated-findings>\n{}\n</orchestrated-findings>\nNotes prepared for this request from several drafts and a review; use what is right in them.",
            findings.trim()
        )));
        message.content = MessageContent::Blocks(blocks);
    }
    request
}

/// Sends the answerer's stream through (after the progress block); usage as it reports.
async fn relay(mut stream: ExpertStream, out: &Yielder<Result<ExpertEvent, ExpertError>>) {
    while let Some(item) = stream.next().await {
        let item = match item {
            // The answerer's own reasoning would be a second thinking block: dropped.
            Ok(ExpertEvent::Thinking(_) | ExpertEvent::ThinkingSignature(_)) => continue,
            other => other,
        };
        if !out.send(item).await {
            return;
        }
    }
}

impl Expert for Orchestrated {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn model_label(&self) -> String {
        self.0.lead.model_label()
    }

    fn stream(&self, request: ExpertRequest) -> BoxFuture<'_, Result<ExpertStream, ExpertError>> {
        let this = Arc::clone(&self.0);
        Box::pin(async move {
            let body = &request.body;
            let has_tools = body.tools.as_ref().is_some_and(|t| !t.is_empty());
            let utility = !has_tools && body.max_tokens.unwrap_or(u64::MAX) <= UTILITY_MAX_TOKENS;
            let Some((index, task)) = task_turn(body).filter(|_| !utility) else {
                return this.answerer.stream(request).await;
            };
            let key = key_of(request.session.as_deref(), &task);
            // Claude Code adds `system`-role messages after the user's turn; only an assistant
            // turn after it means the task is under way (a tool loop).
            let under_way = body.messages[index + 1..]
                .iter()
                .any(|m| m.role == Role::Assistant);
            if under_way {
                // A tool-loop turn after the task: the findings made for it, if we have them.
                let request = match this.recall(key) {
                    Some(findings) => with_findings(&request, index, &findings),
                    None => request,
                };
                return this.answerer.stream(request).await;
            }
            let show = body.thinking.as_ref().is_some_and(Thinking::is_on);
            let model = body.model.clone();
            let context = context_before(body, index);
            Ok(generator(move |out| async move {
                let started = Instant::now();
                let mut progress = Progress {
                    out: &out,
                    show,
                    open: false,
                };
                let key_id = request.key_id.clone();
                let Some(job) = this
                    .prepare(model, task, context, key_id.as_deref(), &mut progress)
                    .await
                else {
                    return;
                };
                let Some(result) = this.orchestrate(&job, &mut progress).await else {
                    return;
                };
                let merged = match result {
                    Ok(merged) => merged,
                    Err(why) => {
                        // Said in the thinking block, then the direct answer.
                        if !progress.say(format!("{why}: answering directly.")).await
                            || !progress.close().await
                        {
                            return;
                        }
                        match this.answerer.stream(request).await {
                            Ok(stream) => relay(stream, &out).await,
                            Err(error) => {
                                out.send(Err(error)).await;
                            }
                        }
                        return;
                    }
                };
                this.remember(key, &merged.text);
                if !progress.say("Answering.".into()).await || !progress.close().await {
                    return;
                }
                // The answer: the request as sent (system prompt, tools), the findings added to
                // the task's turn, from the tool-capable expert — streamed as it writes.
                let answer_start = Instant::now();
                match this
                    .answerer
                    .stream(with_findings(&request, index, &merged.text))
                    .await
                {
                    Ok(stream) => {
                        let outcome = format!(
                            "with the findings, {} after the request",
                            secs(ms_since(started))
                        );
                        let step = ms_since(answer_start);
                        if progress
                            .step("answer", this.answerer.name(), outcome, step)
                            .await
                        {
                            relay(stream, &out).await;
                        }
                        // What the answer established, remembered for the key's later requests
                        // — after the answer, so it never delays it.
                        if let (Some(graph), Some(key_id)) = (this.graph.clone(), key_id) {
                            let lead = Arc::clone(&this.lead);
                            let request_id = request.request_id.clone();
                            tokio::spawn(async move {
                                knowledge::learn(
                                    &*lead,
                                    &graph,
                                    &job.model,
                                    &job.task,
                                    &merged.text,
                                    key_id,
                                    request_id,
                                )
                                .await;
                            });
                        }
                    }
                    Err(error) => {
                        out.send(Err(error)).await;
                    }
                }
            })
            .boxed())
        })
    }

    fn count_tokens(&self, request: ExpertRequest) -> BoxFuture<'_, Result<u64, ExpertError>> {
        self.0.answerer.count_tokens(request)
    }

    fn waiting(&self) -> usize {
        self.0.lead.waiting()
    }

    fn warm(&self) -> BoxFuture<'_, Result<(), ExpertError>> {
        self.0.lead.warm()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Ruled, drain, reply, request, tool_call};
    use moe_sovereign_experts::UsageUpdate;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn system(body: &MessagesRequest) -> String {
        body.system.as_ref().map(|s| s.text()).unwrap_or_default()
    }

    fn last_text(body: &MessagesRequest) -> String {
        body.messages
            .last()
            .map(|m| m.content.text())
            .unwrap_or_default()
    }

    /// A lead that plans `plan`, answers sub-tasks by echoing them, merges by listing what it
    /// got, and judges with `verdicts` in turn.
    fn lead(plan: Value, verdicts: Vec<Value>) -> Arc<Ruled> {
        let judged = AtomicUsize::new(0);
        Ruled::new(
            "lead",
            Box::new(move |body| {
                let system = system(body);
                if system == PLANNER {
                    tool_call("plan", plan.clone())
                } else if system == EXPERT {
                    let task = last_text(body);
                    let task = task.rsplit('\n').next().unwrap_or_default().to_owned();
                    reply(10, 4, &format!("answer to {task}"))
                } else if system == MERGER {
                    let answers = last_text(body).matches("answer to").count();
                    reply(30, 6, &format!("merged {answers} answers"))
                } else if system == JUDGE {
                    let n = judged.fetch_add(1, Ordering::SeqCst);
                    tool_call("verdict", verdicts[n.min(verdicts.len() - 1)].clone())
                } else {
                    reply(100, 5, "direct answer")
                }
            }),
        )
    }

    fn answerer() -> Arc<Ruled> {
        Ruled::new(
            "tools",
            Box::new(|_| reply(200, 7, "final from the tool expert")),
        )
    }

    fn two_tasks() -> Value {
        json!({"tasks": [
            {"task": "find A", "category": "general"},
            {"task": "find B", "category": "code"}
        ]})
    }

    fn good() -> Value {
        json!({"score": 8, "missing": "", "replan": false})
    }

    fn stage(lead: &Arc<Ruled>, answerer: &Arc<Ruled>) -> Orchestrated {
        Orchestrated::new(
            lead.clone(),
            Vec::new(),
            answerer.clone(),
            Duration::from_secs(30),
        )
    }

    struct Seen {
        thinking: String,
        text: String,
        steps: Vec<String>,
        usage: Vec<UsageUpdate>,
        thinking_closed_before_text: bool,
    }

    async fn run(stage: &Orchestrated, body: Value) -> Seen {
        let events = drain(stage.stream(request(body)).await.unwrap()).await;
        let mut seen = Seen {
            thinking: String::new(),
            text: String::new(),
            steps: Vec::new(),
            usage: Vec::new(),
            thinking_closed_before_text: true,
        };
        let mut open = false;
        for event in events {
            match event.unwrap() {
                ExpertEvent::Thinking(t) => {
                    open = true;
                    seen.thinking.push_str(&t);
                }
                ExpertEvent::BlockEnd => open = false,
                ExpertEvent::Text(t) => {
                    seen.thinking_closed_before_text &= !open;
                    seen.text.push_str(&t);
                }
                ExpertEvent::Step(s) => seen.steps.push(format!("{}:{}", s.stage, s.expert)),
                ExpertEvent::Usage(u) => seen.usage.push(u),
                _ => {}
            }
        }
        seen
    }

    fn ask(text: &str, thinking: bool) -> Value {
        let mut body = json!({"model": "claude-opus-4-8", "max_tokens": 2000,
            "system": "A 22k-token client system prompt",
            "messages": [{"role": "user", "content": text}]});
        if thinking {
            body["thinking"] = json!({"type": "adaptive"});
        }
        body
    }

    #[tokio::test]
    async fn every_stage_runs_in_order_and_shows_as_thinking() {
        let (lead, answerer) = (lead(two_tasks(), vec![good()]), answerer());
        let seen = run(&stage(&lead, &answerer), ask("compare A and B", true)).await;
        let t = &seen.thinking;
        let order = [
            "Planning…",
            "Plan (2 tasks):",
            "1. [general] find A",
            "2. [general] find B",
            "▶ task 1",
            "▶ task 2",
            "✓ task",
            "Merging 2 answers…",
            "Judge: 8/10.",
            "Answering.",
        ];
        let mut at = 0;
        for line in order {
            let found = t[at..]
                .find(line)
                .unwrap_or_else(|| panic!("{line:?} missing or out of order in:\n{t}"));
            at += found;
        }
        assert_eq!(seen.text, "final from the tool expert");
        assert!(seen.thinking_closed_before_text);
        assert_eq!(
            seen.steps,
            [
                "plan:lead",
                "expert:lead",
                "expert:lead",
                "merge:lead",
                "judge:lead",
                "answer:tools"
            ]
        );
        // The answer is the answerer's, with the merged findings in the task's turn.
        let answered = &answerer.requests()[0];
        assert_eq!(
            answered.system.as_ref().unwrap().text(),
            "A 22k-token client system prompt"
        );
        let turn = last_text(answered);
        assert!(
            turn.starts_with("compare A and B") && turn.contains("merged 2 answers"),
            "{turn}"
        );
        assert_eq!(seen.usage.last().unwrap().output_tokens, Some(7));
        // Sub-calls never carry the client's system prompt or tools.
        for body in lead.requests() {
            assert!(!system(&body).contains("22k-token"), "{body:?}");
            assert!(body.tools.as_ref().is_none_or(|t| t.len() == 1));
        }
    }

    #[tokio::test]
    async fn thinking_off_shows_no_thinking_but_the_trace_has_every_stage() {
        let (lead, answerer) = (lead(two_tasks(), vec![good()]), answerer());
        let seen = run(&stage(&lead, &answerer), ask("compare A and B", false)).await;
        assert_eq!(seen.thinking, "");
        assert_eq!(seen.text, "final from the tool expert");
        assert_eq!(seen.steps.len(), 6);
    }

    #[tokio::test]
    async fn an_unusable_plan_is_retried_once_then_answered_directly() {
        let (lead, answerer) = (lead(json!({"tasks": []}), vec![good()]), answerer());
        let seen = run(&stage(&lead, &answerer), ask("hello", true)).await;
        assert!(
            seen.thinking.contains("no usable plan (0 tasks"),
            "{}",
            seen.thinking
        );
        assert!(
            seen.thinking.contains("answering directly"),
            "{}",
            seen.thinking
        );
        assert_eq!(seen.text, "final from the tool expert");
        let plans = lead
            .requests()
            .iter()
            .filter(|b| system(b) == PLANNER)
            .count();
        assert_eq!(plans, 2);
        // The direct answer is the request as sent.
        assert_eq!(
            answerer.requests()[0].system.as_ref().unwrap().text(),
            "A 22k-token client system prompt"
        );
    }

    #[tokio::test]
    async fn a_judge_may_ask_for_one_replan_with_what_is_missing() {
        let poor = json!({"score": 3, "missing": "the cost of B", "replan": true});
        let (lead, answerer) = (lead(two_tasks(), vec![poor.clone(), poor]), answerer());
        let seen = run(&stage(&lead, &answerer), ask("compare A and B", true)).await;
        let plans: Vec<String> = lead
            .requests()
            .iter()
            .filter(|b| system(b) == PLANNER)
            .map(last_text)
            .collect();
        assert_eq!(plans.len(), 2, "one re-plan at most");
        assert!(plans[1].contains("the cost of B"), "{}", plans[1]);
        assert!(seen.thinking.contains("Planning again…"));
        assert_eq!(seen.text, "final from the tool expert");
    }

    #[tokio::test]
    async fn tool_requests_get_the_findings_in_the_task_turn_and_keep_them_for_the_tool_loop() {
        let (lead, answerer) = (lead(two_tasks(), vec![good()]), answerer());
        let stage = stage(&lead, &answerer);
        let mut body = ask("fix the bug", true);
        body["tools"] = json!([{"name": "Read", "input_schema": {"type": "object"}}]);
        let seen = run(&stage, body.clone()).await;
        assert_eq!(seen.text, "final from the tool expert");
        let first = &answerer.requests()[0];
        assert!(first.tools.is_some());
        assert_eq!(
            first.system.as_ref().unwrap().text(),
            "A 22k-token client system prompt"
        );
        let turn = last_text(first);
        assert!(
            turn.starts_with("fix the bug") && turn.contains("merged 2 answers"),
            "{turn}"
        );

        // The tool loop's next turn: no new plan, the same findings in the same place.
        body["messages"] = json!([
            {"role": "user", "content": "fix the bug"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}]}
        ]);
        let plans_before = lead.requests().len();
        run(&stage, body).await;
        assert_eq!(lead.requests().len(), plans_before);
        let second = &answerer.requests()[1];
        assert_eq!(second.messages[0].content.text(), turn);
    }

    #[tokio::test]
    async fn a_system_message_after_the_task_does_not_hide_it() {
        let (lead, answerer) = (lead(two_tasks(), vec![good()]), answerer());
        let mut body = ask("compare A and B", false);
        body["messages"] = json!([
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>context</system-reminder>"},
                {"type": "text", "text": "compare A and B"}]},
            {"role": "system", "content": "Available agent types"}
        ]);
        let seen = run(&stage(&lead, &answerer), body).await;
        assert_eq!(seen.text, "final from the tool expert");
        let plan = lead
            .requests()
            .into_iter()
            .find(|b| system(b) == PLANNER)
            .unwrap();
        let asked = last_text(&plan);
        assert!(
            asked.contains("compare A and B") && !asked.contains("system-reminder"),
            "{asked}"
        );
    }

    #[tokio::test]
    async fn utility_calls_take_the_direct_path() {
        let (lead, answerer) = (lead(two_tasks(), vec![good()]), answerer());
        let mut body = ask("Generate a title for this chat", false);
        body["max_tokens"] = json!(64);
        let seen = run(&stage(&lead, &answerer), body).await;
        assert_eq!(seen.text, "final from the tool expert");
        assert!(lead.requests().is_empty());
    }

    #[tokio::test]
    async fn experts_are_chosen_by_tag_and_one_task_gets_two_samples_of_one_model() {
        let coder = Ruled::new("coder", Box::new(|_| reply(5, 2, "answer to code")));
        let (main, answerer) = (lead(two_tasks(), vec![good()]), answerer());
        let members = vec![Member {
            expert: coder.clone(),
            tags: vec!["code".into()],
        }];
        let stage = Orchestrated::new(
            main.clone(),
            members,
            answerer.clone(),
            Duration::from_secs(30),
        );
        let categories = stage.0.categories();
        assert_eq!(categories, ["general", "code"]);
        run(&stage, ask("compare A and B", false)).await;
        assert_eq!(coder.requests().len(), 1);
        assert!(last_text(&coder.requests()[0]).contains("find B"));

        let one = lead(
            json!({"tasks": [{"task": "only", "category": "general"}]}),
            vec![good()],
        );
        let seen = run(&stage_of(&one), ask("one thing", false)).await;
        let temperatures: Vec<f64> = one
            .requests()
            .iter()
            .filter(|b| system(b) == EXPERT)
            .filter_map(|b| b.temperature)
            .collect();
        assert_eq!(temperatures.len(), 2, "{temperatures:?}");
        assert_ne!(temperatures[0], temperatures[1]);
        assert_eq!(seen.text, "final from the tool expert");
    }

    /// Research through a local server shaped like SearXNG: the hits reach the task's expert,
    /// the trace has the search, and a search that fails leaves the expert answering anyway.
    #[tokio::test]
    async fn research_tasks_search_the_web_first_when_search_is_on() {
        let app = axum::Router::new().route(
            "/search",
            axum::routing::get(|| async {
                axum::Json(json!({"results": [
                    {"title": "Copper", "url": "https://example.org/cu", "content": "conducts heat"}
                ], "unresponsive_engines": [["google", "timeout"]]}))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let plan = json!({"tasks": [
            {"task": "why copper in pans", "category": "research", "search_query": "copper cookware"},
            {"task": "other uses", "category": "general"}
        ]});
        for (base, searched) in [
            (format!("http://{addr}"), true),
            ("http://127.0.0.1:1".to_owned(), false),
        ] {
            let (lead, answerer) = (lead(plan.clone(), vec![good()]), answerer());
            let stage = stage(&lead, &answerer).with_search(Some(WebSearch::new(&base, 3)));
            assert_eq!(stage.0.categories(), ["general", "research"]);
            let seen = run(&stage, ask("copper", true)).await;
            let experts: Vec<String> = lead
                .requests()
                .iter()
                .filter(|b| system(b) == EXPERT)
                .map(last_text)
                .collect();
            let research = experts
                .iter()
                .find(|t| t.ends_with("why copper in pans"))
                .unwrap();
            let other = experts.iter().find(|t| t.ends_with("other uses")).unwrap();
            assert!(!other.contains("Web results"), "{other}");
            assert!(
                seen.steps.iter().any(|s| s.starts_with("search:")),
                "{:?}",
                seen.steps
            );
            assert!(
                seen.thinking
                    .contains("🔎 task 1 searches the web: copper cookware"),
                "{}",
                seen.thinking
            );
            if searched {
                assert!(
                    research.contains("1. Copper — conducts heat (https://example.org/cu)"),
                    "{research}"
                );
                assert!(
                    seen.thinking
                        .contains("1 results; engines not answering: google"),
                    "{}",
                    seen.thinking
                );
            } else {
                assert!(!research.contains("Web results"), "{research}");
                assert!(
                    seen.thinking.contains("the search failed"),
                    "{}",
                    seen.thinking
                );
            }
            assert_eq!(seen.text, "final from the tool expert");
        }
        // Without search, the planner is not offered research or search_query.
        let (lead, answerer) = (lead(plan, vec![good()]), answerer());
        run(&stage(&lead, &answerer), ask("copper", false)).await;
        let planner = lead
            .requests()
            .into_iter()
            .find(|b| system(b) == PLANNER)
            .unwrap();
        let schema = planner.tools.unwrap()[0].input_schema.clone().unwrap();
        assert!(
            !schema.to_string().contains("search_query")
                && !schema.to_string().contains("research")
        );
    }

    fn stage_of(lead: &Arc<Ruled>) -> Orchestrated {
        stage(lead, &answerer())
    }

    #[test]
    fn plans_and_verdicts_are_checked() {
        let categories = vec!["general".to_owned(), "code".to_owned()];
        assert_eq!(
            parse_plan(None, &categories, &[]),
            Err("no `tasks` list".into())
        );
        let five = json!({"tasks": [{"task": "a"}, {"task": "b"}, {"task": "c"}, {"task": "d"}, {"task": "e"}]});
        assert!(
            parse_plan(Some(&five), &categories, &[])
                .unwrap_err()
                .contains("5 tasks")
        );
        let odd = json!({"tasks": [{"task": " a ", "category": "poetry"}]});
        assert_eq!(
            parse_plan(Some(&odd), &categories, &[]).unwrap(),
            [Task {
                task: "a".into(),
                category: "general".into(),
                search_query: None,
                mcp_tool: None,
                mcp_args: None,
            }]
        );
        // A tool the plan names must exist; its arguments must be an object.
        let tools = vec!["everything__get-sum".to_owned()];
        let named = json!({"tasks": [
            {"task": "2+3", "category": "general", "mcp_tool": "everything__get-sum", "mcp_args": {"a": 2, "b": 3}},
            {"task": "x", "category": "general", "mcp_tool": "rm__rf", "mcp_args": {}},
            {"task": "y", "category": "general", "mcp_tool": "everything__get-sum", "mcp_args": "a=2"}
        ]});
        let plan = parse_plan(Some(&named), &categories, &tools).unwrap();
        assert_eq!(plan[0].mcp_tool.as_deref(), Some("everything__get-sum"));
        assert_eq!(plan[0].mcp_args, Some(json!({"a": 2, "b": 3})));
        assert_eq!(
            (plan[1].mcp_tool.as_ref(), plan[1].mcp_args.as_ref()),
            (None, None)
        );
        assert_eq!(plan[2].mcp_args, None);
        assert!(parse_plan(Some(&json!({"tasks": [{"task": "  "}]})), &categories, &[]).is_err());
        assert_eq!(parse_verdict(Some(&json!({"score": 11}))), None);
        assert_eq!(
            parse_verdict(Some(&json!({"score": 4, "missing": "x", "replan": true}))),
            Some(Verdict {
                score: 4,
                missing: "x".into(),
                replan: true
            })
        );
    }
}
