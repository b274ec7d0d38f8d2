import "./styles.css";
import { h } from "./dom";
import { fallback, route, start } from "./router";
import { experimentsPage } from "./pages/experiments";
import { runsPage } from "./pages/runs";
import { runPage } from "./pages/run";
import { comparePage } from "./pages/compare";
import { modelPage, modelsPage } from "./pages/models";
import { dataPage } from "./pages/data";
import { lineagePage } from "./pages/lineage";

route("/", "experiments", experimentsPage);
route("/experiments", "experiments", experimentsPage);
route("/experiments/:id", "experiments", runsPage);
route("/runs/:id", "experiments", runPage);
route("/compare", "experiments", comparePage);
route("/models", "models", modelsPage);
route("/models/:name", "models", modelPage);
route("/data", "data", dataPage);
route("/lineage", "models", lineagePage);
fallback(({ outlet }) => {
  outlet.append(
    h("h1", null, "Page not found"),
    h("p", null, "No view lives at ", h("code", null, location.pathname), "."),
  );
});

start(document.getElementById("app") as HTMLElement);
