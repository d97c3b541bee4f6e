{{/*
Labels of every object. managed-by is Helm; part-of ties them to airstack.
*/}}
{{- define "platform.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: airstack
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The PVC names. Fixed on purpose: dags/common/kpo.py (DATA_CLAIM) and
charts/airflow/values.yaml (logs existingClaim) use them.
*/}}
{{- define "platform.claimName" -}}
{{- get (dict "data" "airflow-data" "logs" "airflow-logs") . -}}
{{- end }}

{{/* Names of the Secrets made for the official chart (airstack.settings.render.secret_names). */}}
{{- define "platform.keysSecretName" -}}
{{- printf "%s-settings-keys" .Values.airflowRelease -}}
{{- end }}

{{- define "platform.envSecretName" -}}
{{- printf "%s-settings-env" .Values.airflowRelease -}}
{{- end }}

{{- define "platform.usersSecretName" -}}
{{- printf "%s-users" .Values.airflowRelease -}}
{{- end }}

{{- define "platform.oidcSecretName" -}}
{{- printf "%s-oidc" .Values.airflowRelease -}}
{{- end }}

{{- define "platform.metadataSecretName" -}}
{{- printf "%s-metadata" .Values.airflowRelease -}}
{{- end }}

{{/*
Secret data: every value base64-encoded, keys quoted (a key such as ON must stay a string).
Called with the map of plain values.
*/}}
{{- define "platform.secretData" -}}
{{- range $key, $value := . }}
{{ $key | quote }}: {{ $value | toString | b64enc | quote }}
{{- end }}
{{- end }}
