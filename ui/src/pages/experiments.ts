// The experiments list: run counts and last activity; create, rename and delete.

import { CAIRN, MLFLOW, get, isAbort, messageOf, post } from "../api";
import { errorBox, fill, h, link } from "../dom";
import { ago, count, dateTime } from "../format";
import type { RouteContext } from "../router";
import type { Experiment } from "../types";

interface Activity {
  experiment_id: string;
  run_count: number;
  last_activity: number | null;
}

export function experimentsPage({ outlet, signal }: RouteContext): void {
  document.title = "Experiments · Cairn";
  const message = h("div", { class: "messages" });
  const body = h("tbody");
  const name = h("input", {
    type: "text",
    name: "experiment-name",
    placeholder: "New experiment name",
    "aria-label": "New experiment name",
    required: true,
  });
  const form = h(
    "form",
    { class: "inline-form", on: { submit: (event: SubmitEvent) => void create(event) } },
    name,
    h("button", { type: "submit" }, "Create"),
  );
  outlet.append(
    h("div", { class: "page-head" }, h("h1", null, "Experiments"), form),
    message,
    h(
      "table",
      { class: "data experiments" },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", null, "Name"),
          h("th", null, "ID"),
          h("th", { class: "num" }, "Runs"),
          h("th", null, "Last activity"),
          h("th", null, "Created"),
          h("th", null, ""),
        ),
      ),
      body,
    ),
  );

  function show(error: unknown): void {
    if (!isAbort(error)) fill(message, errorBox(messageOf(error)));
  }

  async function create(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const value = name.value.trim();
    if (!value) return;
    try {
      await post(`${MLFLOW}/experiments/create`, { name: value }, signal);
      name.value = "";
      fill(message);
      await load();
    } catch (error) {
      show(error);
    }
  }

  async function load(): Promise<void> {
    try {
      const [found, activity] = await Promise.all([
        get<{ experiments?: Experiment[] }>(`${MLFLOW}/experiments/search`, { max_results: 50000 }, signal),
        get<{ experiments: Activity[] }>(`${CAIRN}/experiments/activity`, undefined, signal),
      ]);
      const stats = new Map(activity.experiments.map((a) => [a.experiment_id, a]));
      const experiments = found.experiments ?? [];
      fill(
        body,
        experiments.length
          ? experiments.map((e) => row(e, stats.get(e.experiment_id)))
          : h("tr", null, h("td", { colspan: "6", class: "muted" }, "No experiments yet.")),
      );
    } catch (error) {
      show(error);
    }
  }

  function row(experiment: Experiment, stats: Activity | undefined): HTMLTableRowElement {
    const last = Math.max(stats?.last_activity ?? 0, experiment.last_update_time ?? 0) || null;
    const nameCell = h("td", null, link(`/experiments/${encodeURIComponent(experiment.experiment_id)}`, experiment.name));
    const actions = h("td", { class: "actions" });
    const tr = h(
      "tr",
      { dataset: { experimentId: experiment.experiment_id } },
      nameCell,
      h("td", { class: "mono" }, experiment.experiment_id),
      h("td", { class: "num" }, count(stats?.run_count ?? 0)),
      h("td", { title: dateTime(last) }, ago(last)),
      h("td", null, dateTime(experiment.creation_time)),
      actions,
    );
    const idle = () =>
      fill(
        actions,
        h("button", { type: "button", class: "small", on: { click: rename } }, "Rename"),
        h("button", { type: "button", class: "small danger", on: { click: confirmDelete } }, "Delete"),
      );
    function rename(): void {
      const input = h("input", { type: "text", value: experiment.name, "aria-label": "New name" });
      const save = async (event: SubmitEvent) => {
        event.preventDefault();
        try {
          await post(
            `${MLFLOW}/experiments/update`,
            { experiment_id: experiment.experiment_id, new_name: input.value.trim() },
            signal,
          );
          fill(message);
          await load();
        } catch (error) {
          show(error);
        }
      };
      fill(
        nameCell,
        h(
          "form",
          { class: "inline-form", on: { submit: save } },
          input,
          h("button", { type: "submit", class: "small" }, "Save"),
          h("button", { type: "button", class: "small", on: { click: () => void load() } }, "Cancel"),
        ),
      );
      input.focus();
      input.select();
    }
    function confirmDelete(): void {
      fill(
        actions,
        h("span", null, "Delete? "),
        h("button", { type: "button", class: "small danger", on: { click: remove } }, "Yes, delete"),
        h("button", { type: "button", class: "small", on: { click: idle } }, "No"),
      );
    }
    async function remove(): Promise<void> {
      try {
        await post(`${MLFLOW}/experiments/delete`, { experiment_id: experiment.experiment_id }, signal);
        fill(message);
        await load();
      } catch (error) {
        show(error);
      }
    }
    idle();
    return tr;
  }

  void load();
}
