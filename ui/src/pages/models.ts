// The model registry: registered models, and one model's versions (with links to the runs
// that made them) and aliases, where an alias can be set or removed. ?q= filters the list.

import { MLFLOW, get, isAbort, messageOf, post, send } from "../api";
import { errorBox, fill, h, link } from "../dom";
import { ago, dateTime } from "../format";
import { hrefWith, navigate, type RouteContext } from "../router";
import type { ModelVersion, RegisteredModel } from "../types";
import { lineageHref } from "./lineage";

function quoted(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

function modelHref(name: string): string {
  return `/models/${encodeURIComponent(name)}`;
}

export function modelsPage({ query, outlet, signal }: RouteContext): void {
  document.title = "Models · Cairn";
  const q = query.get("q") ?? "";
  const messages = h("div", { class: "messages" });
  const body = h("tbody");
  const search = h("input", { type: "search", name: "q", value: q, placeholder: "Find a model", "aria-label": "Find a model" });
  outlet.append(
    h(
      "div",
      { class: "page-head" },
      h("h1", null, "Registered models"),
      h(
        "form",
        {
          class: "inline-form",
          on: {
            submit: (event: SubmitEvent) => {
              event.preventDefault();
              navigate(hrefWith({ q: search.value.trim() || null }));
            },
          },
        },
        search,
        h("button", { type: "submit" }, "Search"),
      ),
    ),
    messages,
    h(
      "table",
      { class: "data models" },
      h("thead", null, h("tr", null, ["Name", "Latest version", "Aliases", "Updated", "Description"].map((c) => h("th", null, c)))),
      body,
    ),
  );
  const filter = q ? `name ILIKE ${quoted(`%${q}%`)}` : undefined;
  get<{ registered_models?: RegisteredModel[] }>(`${MLFLOW}/registered-models/search`, { filter, max_results: 1000 }, signal)
    .then(({ registered_models: models = [] }) => {
      fill(
        body,
        models.length
          ? models.map((model) => {
              const latest = [...(model.latest_versions ?? [])].sort((a, b) => Number(b.version) - Number(a.version))[0];
              return h(
                "tr",
                null,
                h("td", null, link(modelHref(model.name), model.name)),
                h("td", null, latest ? `v${latest.version}` : "—"),
                h("td", null, (model.aliases ?? []).map((a) => h("span", { class: "badge alias" }, `@${a.alias} → v${a.version}`))),
                h("td", { title: dateTime(model.last_updated_timestamp) }, ago(model.last_updated_timestamp)),
                h("td", null, model.description ?? ""),
              );
            })
          : h("tr", null, h("td", { colspan: "5", class: "muted" }, q ? "No model matches." : "No registered models yet.")),
      );
    })
    .catch((error: unknown) => {
      if (!isAbort(error)) fill(messages, errorBox(messageOf(error)));
    });
}

export function modelPage({ params, outlet, signal }: RouteContext): void {
  const name = params.name ?? "";
  document.title = `${name} · Models · Cairn`;
  const messages = h("div", { class: "messages" });
  const body = h("div");
  outlet.append(h("nav", { class: "crumbs" }, link("/models", "Models"), " / ", name), h("h1", null, name), messages, body);
  void load();

  async function load(): Promise<void> {
    try {
      const [{ registered_model: model }, { model_versions: versions = [] }] = await Promise.all([
        get<{ registered_model: RegisteredModel }>(`${MLFLOW}/registered-models/get`, { name }, signal),
        get<{ model_versions?: ModelVersion[] }>(`${MLFLOW}/model-versions/search`, { filter: `name = ${quoted(name)}`, max_results: 10000 }, signal),
      ]);
      render(model, [...versions].sort((a, b) => Number(b.version) - Number(a.version)));
    } catch (error) {
      if (!isAbort(error)) fill(messages, errorBox(messageOf(error)));
    }
  }

  async function act(action: () => Promise<unknown>): Promise<void> {
    try {
      await action();
      fill(messages);
      await load();
    } catch (error) {
      if (!isAbort(error)) fill(messages, errorBox(messageOf(error)));
    }
  }

  function render(model: RegisteredModel, versions: ModelVersion[]): void {
    const aliases = [...(model.aliases ?? [])].sort((a, b) => a.alias.localeCompare(b.alias));
    const aliasInput = h("input", { type: "text", name: "alias", placeholder: "champion", "aria-label": "Alias", required: true });
    const versionSelect = h(
      "select",
      { name: "version", "aria-label": "Version" },
      versions.map((v) => h("option", { value: v.version }, `v${v.version}`)),
    );
    const setAlias = (event: SubmitEvent) => {
      event.preventDefault();
      const alias = aliasInput.value.trim();
      if (!alias) return;
      void act(() => post(`${MLFLOW}/registered-models/alias`, { name, alias, version: versionSelect.value }, signal));
    };
    fill(
      body,
      model.description ? h("p", null, model.description) : null,
      h("h2", null, "Aliases"),
      aliases.length
        ? h(
            "table",
            { class: "data kv aliases" },
            h(
              "tbody",
              null,
              aliases.map((a) =>
                h(
                  "tr",
                  { dataset: { alias: a.alias } },
                  h("td", null, `@${a.alias}`),
                  h("td", null, `v${a.version}`),
                  h(
                    "td",
                    { class: "actions" },
                    h(
                      "button",
                      {
                        type: "button",
                        class: "small danger",
                        on: { click: () => void act(() => send("DELETE", `${MLFLOW}/registered-models/alias`, { name, alias: a.alias }, signal)) },
                      },
                      "Remove",
                    ),
                  ),
                ),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No aliases yet."),
      versions.length
        ? h("form", { class: "inline-form set-alias", on: { submit: setAlias } }, h("span", null, "Set alias "), aliasInput, h("span", null, " to "), versionSelect, h("button", { type: "submit", class: "primary" }, "Set alias"))
        : null,
      h("h2", null, `Versions (${versions.length})`),
      h(
        "table",
        { class: "data versions" },
        h("thead", null, h("tr", null, ["Version", "Created", "Status", "Stage", "Aliases", "Source run", "Lineage", "Source"].map((c) => h("th", null, c)))),
        h(
          "tbody",
          null,
          versions.map((v) =>
            h(
              "tr",
              { dataset: { version: v.version } },
              h("td", null, `v${v.version}`),
              h("td", null, dateTime(v.creation_timestamp)),
              h("td", null, v.status ?? ""),
              h("td", null, v.current_stage ?? ""),
              h("td", null, (v.aliases ?? []).map((a) => h("span", { class: "badge alias" }, `@${a}`))),
              h("td", null, v.run_id ? link(`/runs/${encodeURIComponent(v.run_id)}`, v.run_id.slice(0, 12)) : "—"),
              h("td", null, link(lineageHref(v.name, v.version), "lineage")),
              h("td", { class: "mono" }, v.source ?? ""),
            ),
          ),
        ),
      ),
    );
  }
}
