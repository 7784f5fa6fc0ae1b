// provgate lineage view: draws the lineage graph of a page with cytoscape.js.
// Reads the page's JSON twin (the #graph element's data-api, relative to
// <base href>) and colours each node by its verification status. No network
// access beyond this app: the library is served from static/vendor/.
(function () {
  "use strict";
  var el = document.getElementById("graph");
  if (!el) return;
  var note = document.getElementById("graph-status");

  function short(text, max) {
    text = String(text);
    return text.length > max ? text.slice(0, max - 1) + "\u2026" : text;
  }

  function done(state, message) {
    document.body.setAttribute("data-graph", state);
    if (message) note.textContent = message;
  }

  if (typeof window.cytoscape !== "function") {
    done("missing", "The graph library is missing from this install (it is fetched when " +
      "provgate is built: reinstall it). The tables below list every node.");
    return;
  }

  fetch(el.getAttribute("data-api"), { headers: { Accept: "application/json" } })
    .then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    })
    .then(function (doc) {
      var ids = {};
      var elements = [];
      doc.nodes.forEach(function (n) {
        ids[n.log_index] = true;
        elements.push({ data: {
          id: "r" + n.log_index, index: n.log_index, kind: n.kind, side: n.side,
          status: n.status, label: n.log_index + " " + n.kind + "\n" + short(n.name, 30),
          reasons: (n.reasons || []).join("\n")
        } });
      });
      doc.edges.forEach(function (e) {
        if (!ids[e.parent] || !ids[e.child]) return;
        elements.push({ data: {
          id: "e" + e.parent + "-" + e.child + "-" + e.kind,
          source: "r" + e.parent, target: "r" + e.child, label: e.kind
        } });
      });
      var cy = window.cytoscape({
        container: el,
        elements: elements,
        wheelSensitivity: 0.3,
        layout: { name: "preset" },
        minZoom: 0.2,
        maxZoom: 1.4,
        style: [
          { selector: "node", style: {
            "shape": "round-rectangle", "width": 190, "height": 50,
            "label": "data(label)", "text-wrap": "wrap", "text-max-width": 180,
            "text-valign": "center", "font-size": 11, "color": "#111",
            "background-color": "#d8e8d0", "border-width": 2, "border-color": "#3a7d2c"
          } },
          { selector: "node[status = 'failing']", style: {
            "background-color": "#f6d3d0", "border-color": "#b3261e", "border-width": 3
          } },
          { selector: "node[status = 'unchecked']", style: {
            "background-color": "#eee", "border-color": "#888", "border-style": "dashed"
          } },
          { selector: "node[side = 'target']", style: {
            "border-width": 5, "font-weight": "bold"
          } },
          { selector: "node[kind = 'ingest']", style: { "shape": "barrel" } },
          { selector: "node[kind = 'training']", style: { "shape": "hexagon", "width": 210 } },
          { selector: "node[kind = 'snapshot']", style: { "shape": "tag" } },
          { selector: "edge", style: {
            "curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.5,
            "line-color": "#777", "target-arrow-color": "#777",
            "label": "data(label)", "font-size": 9, "color": "#555",
            "text-background-color": "#fff", "text-background-opacity": 1
          } }
        ]
      });
      // Inputs on the left, outputs on the right: a top-down breadthfirst layout, transposed.
      cy.layout({ name: "breadthfirst", directed: true, spacingFactor: 1, animate: false }).run();
      cy.nodes().positions(function (n) {
        var p = n.position();
        return { x: p.y * 1.5, y: p.x * 0.55 };
      });
      cy.fit(undefined, 30);
      cy.on("tap", "node", function (ev) {
        window.location.href = "records/" + ev.target.data("index");
      });
      window.provgateGraph = cy;
      var failing = doc.nodes.filter(function (n) { return n.status === "failing"; }).length;
      done("ready", doc.nodes.length + " node(s), " + failing + " failing. Click a node to " +
        "open its page.");
    })
    .catch(function (err) {
      done("error", "Could not load the graph: " + err.message);
    });
})();
