-- Argo CD health of a lathe.dev/v1alpha1 ModelDeployment, from the conditions Lathe's operator sets.
-- Runs as an argocd-cm custom check: standard libraries off, so only base Lua (no string.*).
-- A canary in progress is Progressing and says its step; a rolled-back canary, failed
-- serving or a missing model version is Degraded. See docs/argocd.md.
local hs = {}

local function condition(kind)
  for _, c in ipairs(obj.status.conditions or {}) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function holds(c)
  return c ~= nil and c.status == "True"
end

local function says(c)
  if c.message == nil or c.message == "" then
    return c.reason
  end
  return c.reason .. ": " .. c.message
end

local generation = obj.metadata.generation or 0
local ready, progressing, degraded, observed
if obj.status ~= nil then
  ready, progressing, degraded = condition("Ready"), condition("Progressing"), condition("Degraded")
  -- A status written on an error path (store unreachable) has the generation on its conditions only.
  observed = obj.status.observedGeneration or (ready and ready.observedGeneration)
end
if observed == nil or observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the Lathe operator to observe generation " .. generation
  return hs
end
if ready == nil or ready.status == "Unknown" then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end

-- "Canary version 4 at 10% (step 1 of 3)", while a canary moves through spec.canary.steps.
local function step()
  local canary = obj.status.canary
  if canary == nil or canary.phase ~= "Progressing" then
    return ""
  end
  local text = "Canary version " .. canary.version .. " at " .. canary.percent .. "%"
  local steps = obj.spec and obj.spec.canary and obj.spec.canary.steps or {}
  for i, percent in ipairs(steps) do
    if percent == canary.percent then
      text = text .. " (step " .. i .. " of " .. #steps .. ")"
    end
  end
  return text .. "; "
end

if ready.status ~= "True" then
  if holds(degraded) or not holds(progressing) then
    hs.status = "Degraded"
  else
    hs.status = "Progressing"
  end
  hs.message = says(ready)
elseif holds(degraded) then
  hs.status = "Degraded"
  hs.message = says(ready)
elseif holds(progressing) then
  hs.status = "Progressing"
  hs.message = step() .. says(ready)
else
  hs.status = "Healthy"
  hs.message = says(ready)
end
return hs
